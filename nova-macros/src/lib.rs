//! Procedural macros of nova: thin entry points over `nova-macros-core`.
