//! Sending a [`Notice`](super::Notice) on a configured channel.
