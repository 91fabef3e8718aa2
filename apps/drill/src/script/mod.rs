//! The script language: [`ast`] (what a script says).

pub mod ast;
