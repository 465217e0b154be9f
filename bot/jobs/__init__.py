"""The life of a job, whichever process it is in: queued in the database (`queue`), claimed, generated and kept
by a worker (`worker`), then handed to the presentation layer through `Presentation` (`interface`).

Nothing here imports Telegram (tests/test_layers.py checks it): the chat side is `bot/presentation/`, and job
reference pictures come through `ReferenceSource` (`bot/telegram_references.py`).
"""
