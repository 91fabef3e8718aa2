//! Compile-time checks that adjacent stages fit together.
//!
//! The generated loop passes every packet through one of these identity
//! conversions. They only exist when the types are equal, so a chain that
//! does not line up fails to compile with a message naming the stages and
//! the types, at the stage's field.

use crate::port::Burst;

/// `Self` (the `In` of stage `Next`) is what stage `Prev` passes on, `Out`.
#[diagnostic::on_unimplemented(
    message = "stage `{Next}` cannot follow stage `{Prev}`: it takes `{Self}` but `{Prev}` passes on `{Out}`",
    label = "`{Next}` takes `{Self}`, not `{Out}`",
    note = "in a `#[pipeline]` each stage's `In` must be the previous stage's `Out`; reorder the stages or add one that turns `{Out}` into `{Self}`"
)]
pub trait Joins<Out, Prev, Next> {
    /// The packet, as the next stage's input.
    fn join(out: Out) -> Self;
}

impl<T, Prev, Next> Joins<T, Prev, Next> for T {
    #[inline(always)]
    fn join(out: T) -> T {
        out
    }
}

/// `Self` (the `In` of the first stage `First`) is what port `P` receives,
/// its buffer type `Buf`.
#[diagnostic::on_unimplemented(
    message = "stage `{First}` cannot be the first stage: it takes `{Self}` but the port `{P}` delivers `{Buf}`",
    label = "`{First}` takes `{Self}`, not `{Buf}`",
    note = "the first stage of a `#[pipeline]` takes the port's buffer type; put a stage taking `{Buf}` first"
)]
pub trait FromPort<Buf, P, First>: Sized {
    /// The received burst, as the first stage's input.
    fn from_port<const N: usize>(burst: &mut Burst<Buf, N>) -> &mut Burst<Self, N>;
}

impl<T, P, First> FromPort<T, P, First> for T {
    #[inline(always)]
    fn from_port<const N: usize>(burst: &mut Burst<T, N>) -> &mut Burst<T, N> {
        burst
    }
}
