//! Stages: the units a pipeline is made of.
