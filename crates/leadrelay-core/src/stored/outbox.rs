//! Backend-neutral rules of the outbox: claims, attempts, replays.
