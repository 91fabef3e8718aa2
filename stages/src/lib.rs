//! The stages bundled with tpa, one module each.
