"""The predicates behind the chapters' asserted claims, one module per chapter topic.

Each claim a chapter asserts is a function here that both the chapter and its negative-control
test call (``@pytest.mark.negative_control``): the chapter shows it holds in the course's
world, the test shows it fails in a world where the claim is false. A predicate returns a
result that says what was measured, so the chapter can print the margin it asserts.
"""
