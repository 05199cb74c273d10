//! Backend-neutral rules of the sales workspace storage.
