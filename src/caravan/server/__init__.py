"""The ASGI application: the native JSON API, the AWS JSON 1.1 endpoint and the event stream
over one engine (``create_app``); ``main.serve`` runs it with uvicorn."""
