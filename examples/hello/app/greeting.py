"""The sample app: a greeting, versioned by the pipeline."""


def greet(name: str) -> str:
    return f"Hello, {name}!"
