//! Local servers for testing nova clients.
