"""Promotion and holds, from git history alone: pure functions over plain values.

``history`` replays an environment's commits into each image's runs; ``holds`` finds the
versions a human rolled back from; ``gates`` turns away the versions an upstream ran that
may not be promoted yet; ``views`` says what each image may move to this cycle; ``record``
is the one decision record every command and the daemon render.
"""
