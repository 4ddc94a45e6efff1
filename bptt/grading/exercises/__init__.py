"""The checks of each exercise, one module per exercise: ``exNN_topic.py`` defines ``EXERCISE``.

Modules are found by file name and imported on demand (:mod:`bptt.grading.registry`).
:mod:`._support` holds the float64 torch helpers the checks share.
"""
