"""Problems and answers: what a problem set is, how a solution is written, how it is graded.

Owns the problem sets (``datasets``: MATH-500, AIME24 and the tiny world's), the text shape of a
solution and the system prompts (``prompts``: step separator, chat-template continuation) and
answer extraction and equivalence (``grading``, with its sandboxed worker).

May import only the top-level utilities (``paths``). Every other layer may import it.
"""
