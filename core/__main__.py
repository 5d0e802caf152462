"""`python -m core ...` is the same as the `handcap` command (the Blender add-on runs it this way)."""

from .cli import main

raise SystemExit(main())
