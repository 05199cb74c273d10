//! Backend-neutral rules of storing leads and customers.
