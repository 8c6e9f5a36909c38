"""The auth microservice suite that k8sdeploy deploys: five services sharing `services.common`."""
