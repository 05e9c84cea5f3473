"""dromedary: "vote for your colour", an API Gateway proxy function (payload 1.0) over a JSON file.

The function's entry point is ``dromedary.api.handler``. Importing any module here has no side
effects: the data directory, the table and the log level are read on every request.
"""
