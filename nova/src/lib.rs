//! nova
