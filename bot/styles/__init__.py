"""Styles and presets as one kind of thing: a named prompt template with default options and, perhaps, reference
pictures. The built-in library is data (`builtin.toml`); STYLES_FILE extends or replaces it; presets are the same
`Style`, kept per chat or person in the database."""

from .library import (
    MAX_NAME_CHARS,
    MAX_PICTURES,
    MAX_PRESETS,
    MAX_TEMPLATE_CHARS,
    Style,
    StyleFileError,
    StyleLibrary,
    builtin_styles,
    check_entry,
    closest_names,
    load_library,
    valid_name,
)

__all__ = [
    "MAX_NAME_CHARS",
    "MAX_PICTURES",
    "MAX_PRESETS",
    "MAX_TEMPLATE_CHARS",
    "Style",
    "StyleFileError",
    "StyleLibrary",
    "builtin_styles",
    "check_entry",
    "closest_names",
    "load_library",
    "valid_name",
]
