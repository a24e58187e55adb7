"""The paper's augmentation protocol end to end: config, cached stages, generators, report files."""
