//! BTF: placeholder, being written.
