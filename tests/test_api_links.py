"""Prose mentions of package functions link to their API reference entry (_ext/api_links.py)."""

from __future__ import annotations

import sys

import pytest
from course import ROOT

sys.path.insert(0, str(ROOT / "_ext"))
from api_links import resolve

OBJECTS = {
    "bptt.rnn.backward": ("api", "bptt.rnn.backward"),
    "bptt.rnn.forward": ("api", "bptt.rnn.forward"),
    "bptt.lstm.forward": ("api", "bptt.lstm.forward"),
    "bptt.torch.tbptt.train_tbptt": ("api", "bptt.torch.tbptt.train_tbptt"),
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bptt.rnn.backward", "bptt.rnn.backward"),
        ("rnn.backward", "bptt.rnn.backward"),
        ("rnn.backward(dh, cache)", "bptt.rnn.backward"),
        ("train_tbptt", "bptt.torch.tbptt.train_tbptt"),
        ("train_tbptt(model, k1=5, k2=5)", "bptt.torch.tbptt.train_tbptt"),
    ],
)
def test_mentions_of_package_objects_resolve(text, expected):
    assert resolve(text, OBJECTS) == expected


@pytest.mark.negative_control
@pytest.mark.parametrize(
    "text",
    [
        "loss.backward",  # torch's, not ours
        "nn.LSTM",
        "forward",  # a bare name defined in several modules is ambiguous
        "h_t",  # a symbol, not a function
        "rnn.backwards",  # a typo links nowhere rather than somewhere wrong
        "x[:, t]",
    ],
)
def test_other_inline_code_links_nowhere(text):
    assert resolve(text, OBJECTS) is None
