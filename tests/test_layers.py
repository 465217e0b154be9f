"""The allowed import directions, checked rather than claimed (docs/DESIGN.md, "Layout").

The engine (`bot.jobs`), the store (`bot.store`), the image client (`bot.imagegen`) and the domain they share import
nothing of Telegram: they are imported here in a fresh interpreter where `telegram` cannot be imported at all.
"""

from __future__ import annotations

import subprocess
import sys

TELEGRAM_FREE = [
    "bot.models",
    "bot.options",
    "bot.references",
    "bot.failures",
    "bot.texts",
    "bot.config",
    "bot.metrics",
    "bot.tasks",
    "bot.process",
    "bot.styles",
    "bot.quota",
    "bot.originals",
    "bot.bodies",
    "bot.imagegen",
    "bot.stars",
    "bot.purchases",
    "bot.store",
    "bot.store.backend",
    "bot.store.sqlite",
    "bot.store.postgres",
    "bot.store.schema",
    "bot.store.migrate",
    "bot.store.payments",
    "bot.jobs",
    "bot.jobs.interface",
    "bot.jobs.queue",
    "bot.jobs.worker",
]


def test_the_engine_the_store_and_the_image_client_cannot_see_telegram():
    script = (
        "import importlib, sys\n"
        "sys.modules['telegram'] = None  # any import of telegram (or telegram.*) now fails\n"
        f"for name in {TELEGRAM_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'telegram' or m.startswith('telegram.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['telegram']"  # only the blocker itself


def test_handlers_see_services_not_the_store():
    """Handlers go through services (the request service, the queue, prefs, access, history): no handler module
    reaches the store, its repositories or its backends."""
    import ast
    from pathlib import Path

    for path in sorted(Path("bot/handlers").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any(module == "store" or module.startswith("store.") for module in imported), path
        touched = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert "store" not in touched, path


def test_no_handler_module_imports_another_but_the_shared_helpers():
    """Each handler module is one feature; what they share is `replies.py` (who, where, may press, answer) and
    `dialogue.py` (a request started, its keyboard shown, submitted), which register no handlers."""
    import ast
    from pathlib import Path

    shared = {"replies", "dialogue"}
    for path in sorted(Path("bot/handlers").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = {node.module} if node.module else {alias.name for alias in node.names}
                assert names <= shared, f"{path}: imports {names - shared}"
