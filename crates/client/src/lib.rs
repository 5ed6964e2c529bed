//! Client for lanner and other Kestrel-compatible queue servers.
