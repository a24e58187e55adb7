"""The lesion classifier: preprocessing (numpy), training data (torch), ONNX scoring (onnxruntime).

``preprocess`` and ``scoring`` import no torch, so scoring runs on a reading workstation;
``data`` and the trainer (``lesion_studio.training.classifier_trainer``) need the `train` extra.
"""
