//! Workers: one pipeline per pinned thread.
