-- The gateway's internal tokens (services/common/identity.py has the same format): a JWT signed with HMAC-SHA256
-- by the key of the pair gateway>AUDIENCE, read from the key file k8sdeploy writes (deploy/identity.py), one key a
-- line: KID NOT_BEFORE ISSUER>AUDIENCE BASE64URL-KEY. The file is read again at most once a second, so a rotated
-- key is used without a restart; the newest key whose NOT_BEFORE has passed signs.

local ffi = require("ffi")

ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len, const unsigned char *d, size_t n,
                    unsigned char *md, unsigned int *md_len);
]]

local M = {}

local ISSUER = "nginx-lua" -- the gateway's name in the suite (deploy/model/suite.py GATEWAY)
local TOKEN_SECONDS = 30
local RELOAD_SECONDS = 1

local state = { path = nil, keys = {}, checked = 0 }

-- OpenSSL's HMAC, which nginx links already (nginx's Lua module has SHA-1 HMAC only).
local function hmac_sha256(key, data)
    local digest = ffi.new("unsigned char[32]")
    local length = ffi.new("unsigned int[1]")
    if ffi.C.HMAC(ffi.C.EVP_sha256(), key, #key, data, #data, digest, length) == nil then
        error("HMAC-SHA256 failed")
    end
    return ffi.string(digest, length[0])
end

local function b64url(raw)
    return (ngx.encode_base64(raw, true):gsub("%+", "-"):gsub("/", "_"))
end

local function unb64url(text)
    local standard = text:gsub("%-", "+"):gsub("_", "/")
    return ngx.decode_base64(standard .. string.rep("=", (4 - #standard % 4) % 4))
end

local function parse(text)
    local keys = {}
    for line in text:gmatch("[^\n]+") do
        local kid, not_before, issuer, audience, secret =
            line:match("^%s*([%w_-]+)%s+(%d+)%s+([%w_-]+)>([%w_-]+)%s+([%w_-]+)%s*$")
        if kid and issuer == ISSUER then
            local raw = unb64url(secret)
            if raw then
                keys[#keys + 1] = { kid = kid, not_before = tonumber(not_before), audience = audience, secret = raw }
            end
        end
    end
    return keys
end

local function load()
    local file, err = io.open(state.path, "r")
    if not file then
        ngx.log(ngx.ERR, "cannot read the identity key file ", state.path, ": ", err)
        return
    end
    local text = file:read("*a")
    file:close()
    state.keys = parse(text or "")
end

function M.configure(path)
    state.path = path
end

local function keys()
    local now = ngx.now()
    if now - state.checked >= RELOAD_SECONDS then
        state.checked = now
        load()
    end
    return state.keys
end

local function signing_key(audience)
    local now = ngx.time()
    local best
    for _, key in ipairs(keys()) do
        if key.audience == audience and key.not_before <= now and (best == nil or key.not_before > best.not_before) then
            best = key
        end
    end
    return best
end

-- The failing hop of an error answer, as only k8sdeploy's smoke test can read it (deploy/smoke.py): KID.NONCE.MAC,
-- MAC the HMAC-SHA256 of NONCE.HOP under the key of the pair gateway>smoke. nil without that key.
function M.reference(hop)
    local key = signing_key("smoke")
    if key == nil then
        return nil
    end
    local nonce = ngx.var.request_id or tostring(ngx.now())
    return key.kid .. "." .. nonce .. "." .. b64url(hmac_sha256(key.secret, nonce .. "." .. hop))
end

-- A token for a call to `audience` on behalf of the user `subject` ("" for none), or nil when no key allows it.
function M.sign(audience, subject)
    local now = ngx.time()
    local best = signing_key(audience)
    if best == nil then
        ngx.log(ngx.ERR, "no key of ", tostring(state.path), " lets the gateway call ", audience)
        return nil
    end
    if subject ~= "" and not subject:match("^%d+$") then
        error("a subject is a user id")
    end
    local header = b64url('{"alg":"HS256","kid":"' .. best.kid .. '","typ":"JWT"}')
    local claims = b64url(string.format('{"iss":"%s","aud":"%s","sub":"%s","iat":%d,"exp":%d}',
        ISSUER, audience, subject, now, now + TOKEN_SECONDS))
    local signed = header .. "." .. claims
    return signed .. "." .. b64url(hmac_sha256(best.secret, signed))
end

return M
