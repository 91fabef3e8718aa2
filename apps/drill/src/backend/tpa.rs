//! tpa's stack as a [`Backend`](super::Backend): to come.
