"""Assisted reading: the detector proposes boxes, the review queue brings the most useful image next,
and retraining refreshes the scores. Headless (no Qt, no torch except to retrain): the CLI and the
GUI drive the same functions.

- :mod:`~lesion_studio.assist.regions`: a localisation map → boxes in image pixels (pure numpy).
- :mod:`~lesion_studio.assist.detector`: run a registered classifier (ONNX) over images, storing
  image scores and box proposals (a background job: progress, cancel).
- :mod:`~lesion_studio.assist.queue`: what is unreviewed, the review orders, the counter.
- :mod:`~lesion_studio.assist.retrain`: train on the current labels, register, re-score.

Proposals themselves (store, accept, reject, and their exact inverses for undo) live in the
store: :mod:`lesion_studio.store.proposals`.
"""
