"""Solutions to the chapter exercises, and the friendly checkers the chapters call.

Each ``chXX`` module holds, for chapter XX, the reference solution of every exercise and a
``check_<name>(student_fn)`` function. A checker never raises: it prints what is right or what
differs (a stub that is not implemented yet, a wrong shape, a half-pixel shift, swapped x and y, ...)
and returns ``True`` only when the student's function agrees with the package on every test case.
What the checkers share (calling the student's function, one comparison tolerance, the verdict) is in
``minimrcnn.solutions.checking``.
"""
