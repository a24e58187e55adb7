"""The built-in demo: procedural long-bone radiographs with known lesions, as a ready project."""

from lesion_studio.demo.phantom import PhantomCase, generate_phantom
from lesion_studio.demo.project import DEMO_BODY_PARTS, build_demo_project, default_demo_folder

__all__ = ["PhantomCase", "generate_phantom", "build_demo_project", "default_demo_folder", "DEMO_BODY_PARTS"]
