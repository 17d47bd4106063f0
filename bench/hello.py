"""The ceiling: a bare hello-world route on the same stack as nimbus (FastAPI on uvicorn).

`hello` is a coroutine, so it runs on the event loop; `hello_sync` is a plain function, so it
runs in the thread pool as nimbus's handlers do: the gap between the two is the thread hop.
"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/hello-sync")
def hello_sync() -> dict[str, str]:
    return {"hello": "world"}
