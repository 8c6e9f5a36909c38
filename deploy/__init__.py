"""k8sdeploy: build, publish, render, apply, wait for, smoke-test and tear down the auth suite."""

__version__ = "0.1.0"
