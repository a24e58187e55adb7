"""Moving annotated image collections in and out of a project, and splitting them."""
