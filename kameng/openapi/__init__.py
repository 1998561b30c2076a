"""The Open API v1 (/openapi/v1/): resellers' signed machine-to-machine API, and the docking endpoints other
发卡 sites use to take kameng as their upstream."""
