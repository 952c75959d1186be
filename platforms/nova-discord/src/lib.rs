//! Discord Gateway v10.
