"""bench_instructions' pieces that need no valgrind: the marks' handshake, the split by object."""

from __future__ import annotations

import os
import threading

from bench_instructions import by_object, pipe_marks

ANNOTATED = """\
--------------------------------------------------------------------------------
Ir                   file:function
--------------------------------------------------------------------------------
9,000 ( 9.00%)  /b/Python-3.11.7/Python/ceval.c:_PyEval_EvalFrameDefault'2 [/x/libpython3.11.so]
  600 ( 0.60%)  /b/Python-3.11.7/./Include/object.h:_PyEval_EvalFrameDefault'2
  400 ( 0.40%)  /b/Python-3.11.7/./Include/object.h:some_inlined_helper
5,000 ( 5.00%)  ???:fe_mul [/v/site-packages/cryptography/hazmat/bindings/_rust.abi3.so]
  300 ( 0.30%)  ???:json_encode [/v/site-packages/msgspec/_core.cpython-311-x86_64-linux-gnu.so]
  200 ( 0.20%)  /project/uvloop/loop.c:Loop_call_soon [/v/site-packages/uvloop/loop.cpython-311.so]
  100 ( 0.10%)  ./malloc/malloc.c:malloc [/usr/lib/x86_64-linux-gnu/libc.so.6]
   50 ( 0.05%)  ???:something [/usr/lib/elsewhere.so]
"""


def test_instructions_are_split_by_the_object_they_ran_in() -> None:
    totals = by_object(ANNOTATED)
    # A line without an object is inlined code: its function's object, else CPython's by path.
    assert totals["interpreter"] == 9_000 + 600 + 400
    assert totals["crypto"] == 5_000
    assert totals["msgspec"] == 300
    assert totals["event loop"] == 200
    assert totals["libc"] == 100
    assert totals["other"] == 50
    assert totals["aiohttp"] == 0


def test_a_mark_waits_for_the_parent_to_answer() -> None:
    child_reads, to_child = os.pipe()
    from_child, child_writes = os.pipe()
    mark = pipe_marks(child_reads, child_writes)
    said: list[bytes] = []

    def parent() -> None:
        said.append(os.read(from_child, 64))
        os.write(to_child, b"go\n")

    thread = threading.Thread(target=parent)
    thread.start()
    mark("start")  # returns only once the parent has answered
    thread.join()
    assert said == [b"start\n"]
    for fd in (child_reads, to_child, from_child, child_writes):
        os.close(fd)
