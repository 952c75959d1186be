//! nova-core
