-- The gateway's checks: the Host it serves, who the caller is (session cookie), login, logout, and cross-site
-- refusal. Services are reached only through the internal locations of nginx.conf, whose upstream addresses are
-- rendered from one place, each call with the gateway's signed token for that service (identity.lua).

local identity = require("identity")

local M = {}

-- hosts: the Host names served (a set); empty: any IP address literal and localhost, never a DNS name (what a
-- DNS-rebinding page would send)
local config = { secure_cookies = false, hosts = {}, identity_keys = nil }
-- The session cookie and the device cookie (services/authentication/devices.py). With TLS their names carry the
-- __Host- prefix: a browser takes such a cookie only from this host, Secure, for Path=/, with no Domain, so a
-- sibling origin cannot plant one. Without TLS the prefix is not allowed; the plain names are documented
-- (docs/suite.md).
local NAMES = { "AccessToken", "LoginDevice" }
local COOKIE, DEVICE = NAMES[1], NAMES[2]
local DEVICE_SECONDS = 365 * 24 * 3600
local SAFE_METHODS = { GET = true, HEAD = true, OPTIONS = true }
local CONTEXT = "User-Context" -- the session service's user contexts (services/common/context.py)
local HOP = "Failing-Hop" -- the frontend names the part that failed to the gateway only (reference)

function M.configure(options)
    for key, value in pairs(options) do
        config[key] = value
    end
    if config.secure_cookies then
        COOKIE, DEVICE = "__Host-AccessToken", "__Host-LoginDevice"
    end
    identity.configure(config.identity_keys)
end

local function allowed_host(host)
    if next(config.hosts) ~= nil then
        return config.hosts[host] == true
    end
    return host == "localhost" or host:match("^%d+%.%d+%.%d+%.%d+$") ~= nil or host:match("^%[[%x:.]+%]$") ~= nil
end

-- The name of a whole Host header, NAME or NAME:PORT (PORT digits only, 1-65535; NAME an IPv6 literal in
-- brackets or no colon at all), in lower case; nil for anything else. nginx's $host is only the part before the
-- first colon, so `127.0.0.1:evil.example` would pass as 127.0.0.1.
local function host_name(given)
    local name, rest = given:match("^(%[[%x:.]+%])(.*)$")
    if name == nil then
        name, rest = given:match("^([^:]+)(.*)$")
    end
    if name == nil then
        return nil
    end
    if rest ~= "" then
        local port = tonumber(rest:match("^:(%d%d?%d?%d?%d?)$"))
        if port == nil or port < 1 or port > 65535 then
            return nil
        end
    end
    return name:lower()
end

-- A request for a Host this gateway does not serve is closed without an answer (444), before anything else: the
-- whole header is checked, name and port.
function M.check_host()
    local given = ngx.var.http_host
    local name = given and host_name(given)
    if name == nil or not allowed_host(name) then
        ngx.log(ngx.WARN, "closed a request for host ", tostring(given))
        return ngx.exit(444)
    end
end

-- A token as the session service issues them: URL-safe base64, nothing that could change the path.
local function valid_token(token)
    return type(token) == "string" and #token >= 20 and #token <= 200 and token:match("^[%w_-]+$") ~= nil
end

local function cookie(value, extra, name, same_site)
    local parts = { (name or COOKIE) .. "=" .. value, "Path=/", "HttpOnly", "SameSite=" .. (same_site or "Lax") }
    if config.secure_cookies then
        parts[#parts + 1] = "Secure"
    end
    if extra then
        parts[#parts + 1] = extra
    end
    return table.concat(parts, "; ")
end

-- The failing hop as only k8sdeploy's smoke test reads it (identity.reference), in the Failure-Reference header.
local function refer(hop)
    ngx.header["Failure-Reference"] = identity.reference(hop)
end

-- Answer 502 with a message that names no service (the log names it, and Failure-Reference for the smoke test).
local function unavailable(service, status)
    ngx.log(ngx.ERR, "the ", service, " service answered ", tostring(status))
    refer(service)
    ngx.status = ngx.HTTP_BAD_GATEWAY
    ngx.header["Content-Type"] = "text/plain; charset=utf-8"
    ngx.say("Something failed on our side. Try again shortly.")
    return ngx.exit(ngx.HTTP_OK)
end

-- The frontend's answers: a Failing-Hop it names becomes the reference; a rotated session's new cookie is set.
function M.answer()
    local hop = ngx.header[HOP]
    if hop ~= nil then
        ngx.header[HOP] = nil
        if type(hop) == "string" and hop:match("^[%w-]+$") then
            refer(hop)
        end
    end
    if ngx.ctx.set_cookie ~= nil then
        local given = ngx.header["Set-Cookie"]
        if given == nil then
            ngx.header["Set-Cookie"] = ngx.ctx.set_cookie
        else
            given = type(given) == "table" and given or { given }
            given[#given + 1] = ngx.ctx.set_cookie
            ngx.header["Set-Cookie"] = given
        end
    end
end

-- The gateway's Authorization for `service` on behalf of `subject` ("" for nobody); a failure answers 502.
local function proof(service, subject)
    local token = identity.sign(service, subject or "")
    if token == nil then
        return unavailable(service, "nothing: the gateway holds no key for it")
    end
    return "Bearer " .. token
end

-- The request's Authorization becomes the gateway's for `service`: the frontend's locations pass it on; the
-- client's own never reaches a service (strip_caller).
local function vouch(service, subject)
    ngx.req.set_header("Authorization", proof(service, subject))
end

-- A subrequest to an internal location, carrying the gateway's Authorization for `service` in its ngx.ctx
-- (nginx.conf's internal_call sends it as the only request header besides the body's type).
local function call(service, uri, options)
    options.ctx = { authorization = proof(service) }
    return ngx.location.capture(uri, options)
end

function M.internal_authorization()
    return ngx.ctx.authorization or ""
end

-- A public page of the frontend: no caller, and no session token.
function M.public()
    M.strip_token()
    vouch("frontend", "")
end

function M.strip_caller()
    ngx.req.clear_header("callerId")
    ngx.req.clear_header("Authorization")
    ngx.req.clear_header(CONTEXT)
end

-- Refuse a state-changing request whose Origin (or, lacking it, Referer) names another site, and one
-- that names none but carries the session cookie: browsers send Origin with such requests.
function M.check_origin()
    if SAFE_METHODS[ngx.req.get_method()] then
        return
    end
    local source = ngx.var.http_origin
    if source == nil or source == "" then
        source = ngx.var.http_referer
    end
    if source == nil or source == "" then
        if M.session_token() ~= nil then
            ngx.log(ngx.WARN, "refused ", ngx.req.get_method(), " ", ngx.var.uri, " with the cookie but no Origin")
            return ngx.exit(ngx.HTTP_FORBIDDEN)
        end
        return -- not sent by a browser, and no session to act for (a login from a script)
    end
    -- The Host is one this gateway serves (check_host), so the site is the one the browser shows.
    local scheme, authority = source:match("^(https?)://([^/?#]+)")
    local host = ngx.var.http_host or ""
    if authority == nil or authority:lower() ~= host:lower() or scheme ~= ngx.var.scheme then
        ngx.log(ngx.WARN, "refused cross-site ", ngx.req.get_method(), " ", ngx.var.uri, " from ", source)
        return ngx.exit(ngx.HTTP_FORBIDDEN)
    end
end

-- The pairs of the Cookie header (or headers), trimmed, in order.
local function cookie_pairs()
    local header = ngx.req.get_headers()["Cookie"]
    if type(header) == "table" then -- several Cookie lines
        header = table.concat(header, "; ")
    end
    local pairs_found = {}
    for pair in (header or ""):gmatch("[^;]+") do
        pair = pair:match("^%s*(.-)%s*$")
        if pair ~= "" then
            local name = pair:match("^[^=]*"):match("^(.-)%s*$")
            pairs_found[#pairs_found + 1] = { text = pair, name = name, value = pair:match("^[^=]*=%s*(.*)$") or "" }
        end
    end
    return pairs_found
end

-- The session token, nil without one, or false when the request carries more than one session cookie, in any
-- case of the name: a cookie planted by a sibling origin (Domain=the parent) travels beside ours, and which of
-- the two comes first is not ours to know, so neither is taken, and neither is deleted.
local function only_cookie(name)
    local found = nil
    for _, pair in ipairs(cookie_pairs()) do
        if pair.name:lower() == name:lower() then
            if found ~= nil then
                return false
            end
            found = pair.value
        end
    end
    return found
end

function M.session_token()
    return only_cookie(COOKIE)
end

-- The gateway's cookies, in any case of their names, with or without the __Host- prefix.
local function ours(name)
    local plain = name:lower():gsub("^__host%-", "")
    return plain == NAMES[1]:lower() or plain == NAMES[2]:lower()
end

-- The frontend never sees the session token nor the device cookie: only the gateway needs them. Other cookies
-- pass unchanged.
function M.strip_token()
    local kept = {}
    for _, pair in ipairs(cookie_pairs()) do
        if not ours(pair.name) then
            kept[#kept + 1] = pair.text
        end
    end
    ngx.req.set_header("Cookie", #kept > 0 and table.concat(kept, "; ") or nil)
end

-- The session behind the session cookie: its user's id, the user contexts (services/common/context.py) and the
-- session's new token when the session service rotated it (else ""); nil when there is no valid session. The
-- token goes in the body: a URI would be in nginx's logs.
local function session_of(token)
    if not valid_token(token) then
        return nil
    end
    local answer = call("session", "/_internal/sessions/lookup", { method = ngx.HTTP_POST, body = token })
    if answer.status == ngx.HTTP_NOT_FOUND then
        return nil
    end
    local caller, contexts, rotated = (answer.body or ""):match("^(%d+)\n([^\n]*)\n([^\n]*)$")
    if answer.status ~= ngx.HTTP_OK or caller == nil or (rotated ~= "" and not valid_token(rotated)) then
        return unavailable("session", answer.status)
    end
    return { caller = caller, contexts = contexts, rotated = rotated }
end

function M.access()
    M.check_origin()
    local token = M.session_token()
    local found = token and session_of(token)
    if not found then
        if token then -- a token of no session: forget it (never when there were several: one may be the real one)
            ngx.header["Set-Cookie"] = cookie("", "Max-Age=0")
        end
        return ngx.redirect("/login", ngx.HTTP_MOVED_TEMPORARILY)
    end
    if found.rotated ~= "" then -- a new session id after a change of the user's role: the browser's cookie too
        ngx.ctx.set_cookie = cookie(found.rotated)
    end
    M.strip_token()
    vouch("frontend", found.caller)
    ngx.req.set_header(CONTEXT, found.contexts)
end

-- A subrequest's answer header, by its lower-case name (the subrequest's names keep the service's case).
local function header_of(answer, wanted)
    for name, value in pairs(answer.header) do
        if name:lower() == wanted and type(value) == "string" then
            return value
        end
    end
    return nil
end

-- The login page again, with a message: 401 for wrong credentials, 429 for an account locked for a while,
-- 503 while every hash slot of the authentication service is taken.
local function login_failed(status, reason)
    local page = call("frontend", "/_internal/login-page", { args = { error = reason or "1" } })
    ngx.status = status or ngx.HTTP_UNAUTHORIZED
    ngx.header["Content-Type"] = "text/html; charset=utf-8"
    ngx.print(page.body)
    return ngx.exit(ngx.HTTP_OK)
end

function M.login()
    if ngx.req.get_method() ~= "POST" then
        -- the page's message and status are the gateway's to choose (login_failed): a link's `?error=locked`
        -- would show anyone a false lockout with a 429
        ngx.req.set_uri_args({})
        return ngx.exec("@frontend")
    end
    ngx.req.read_body()
    local args = ngx.req.get_post_args(10) or {}
    local email, password = args.emailaddress, args.password
    if type(email) ~= "string" or type(password) ~= "string" or email == "" or password == "" then
        return login_failed()
    end
    -- the browser's device cookie for this account, if it has one (several: none), judged by authentication
    local device = only_cookie(DEVICE)
    local auth = call("authentication", "/_internal/authentication", {
        method = ngx.HTTP_POST,
        body = ngx.encode_args({ emailaddress = email, password = password, device = device or "" }),
    })
    if auth.status == ngx.HTTP_UNAUTHORIZED then
        return login_failed()
    end
    if auth.status == ngx.HTTP_TOO_MANY_REQUESTS or auth.status == ngx.HTTP_SERVICE_UNAVAILABLE then
        -- Locked after too many failed logins, or busy: the person sees the form, a client when to try again
        -- (seconds; the subrequest's header names keep the service's case, FastAPI's are lower case).
        local retry = header_of(auth, "retry-after")
        retry = retry and retry:match("^%d+$") and retry or nil
        if auth.status == ngx.HTTP_SERVICE_UNAVAILABLE and retry == nil then
            return unavailable("authentication", auth.status) -- not the service's own answer
        end
        ngx.header["Retry-After"] = retry
        if auth.status == ngx.HTTP_SERVICE_UNAVAILABLE then
            return login_failed(ngx.HTTP_SERVICE_UNAVAILABLE, "busy")
        end
        return login_failed(ngx.HTTP_TOO_MANY_REQUESTS, "locked")
    end
    -- authentication's answer is its proof of the login for the session service, which the gateway cannot make
    if auth.status ~= ngx.HTTP_OK or not auth.body:match("^[%w_-]+%.[%w_-]+%.[%w_-]+$") then
        return unavailable("authentication", auth.status)
    end
    local session = call("session", "/_internal/sessions", { method = ngx.HTTP_POST, body = auth.body })
    if session.status ~= ngx.HTTP_OK or not valid_token(session.body) then
        return unavailable("session", session.status)
    end
    -- a new session at every login; the one this browser had before ends (never one of several cookies')
    local before = M.session_token()
    if valid_token(before) then
        call("session", "/_internal/sessions/revoke", { method = ngx.HTTP_POST, body = before })
    end
    local cookies = { cookie(session.body) }
    local issued = header_of(auth, "device-cookie")
    if issued ~= nil and issued:match("^[%w._-]+$") and #issued <= 200 then
        cookies[2] = cookie(issued, "Max-Age=" .. DEVICE_SECONDS, DEVICE, "Strict")
    end
    ngx.header["Set-Cookie"] = cookies
    return ngx.redirect("/", ngx.HTTP_MOVED_TEMPORARILY)
end

-- Only a POST ends the session (after check_origin): a link or an image elsewhere cannot.
function M.logout()
    if ngx.req.get_method() ~= "POST" then
        ngx.header["Allow"] = "POST"
        return ngx.exit(ngx.HTTP_NOT_ALLOWED)
    end
    local token = M.session_token()
    if token == false then -- several session cookies: which session to end is not known; none is touched
        return ngx.redirect("/login", ngx.HTTP_MOVED_TEMPORARILY)
    end
    if valid_token(token) then
        local answer = call("session", "/_internal/sessions/revoke", { method = ngx.HTTP_POST, body = token })
        ngx.header["Set-Cookie"] = cookie("", "Max-Age=0")
        if answer.status ~= ngx.HTTP_NO_CONTENT then
            -- The browser forgets the cookie, but the session lives on: say so rather than pretend.
            return unavailable("session", answer.status)
        end
    end
    ngx.header["Set-Cookie"] = cookie("", "Max-Age=0")
    return ngx.redirect("/login", ngx.HTTP_MOVED_TEMPORARILY)
end

return M
