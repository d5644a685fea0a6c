//! The ngrok API simulator: an in-memory ngrok API for tests, the demo, and trying the watchdog.
