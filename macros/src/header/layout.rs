//! Where each field sits on the wire, and the code that reads and writes
//! it at constant offsets.
//!
//! Fields are packed in declaration order from bit 0, most significant bit
//! first (network order). A field's bits may cross byte boundaries; it is
//! read by loading the bytes it spans as one big-endian word, shifting and
//! masking.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::{format_ident, quote};

use super::parse::{Header, Kind};

/// A field's position: bit offset from the header start and width in bits.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub offset: u32,
    pub bits: u32,
}

impl Slot {
    /// First byte the field touches.
    pub fn first_byte(self) -> usize {
        (self.offset / 8) as usize
    }
    /// One past the last byte the field touches.
    pub fn end_byte(self) -> usize {
        (self.offset + self.bits).div_ceil(8) as usize
    }
    /// A human description for docs: "bits 4..8 (4 bits)" or "bytes 12..16".
    pub fn describe(self) -> String {
        if self.offset.is_multiple_of(8) && self.bits.is_multiple_of(8) {
            format!("bytes {}..{}", self.first_byte(), self.end_byte())
        } else {
            format!(
                "bits {}..{} ({} bit{})",
                self.offset,
                self.offset + self.bits,
                self.bits,
                if self.bits == 1 { "" } else { "s" }
            )
        }
    }
}

/// Assigns every field its slot; checks alignment and the total size.
/// Returns the slots and the fixed length in bytes.
pub fn layout(h: &Header) -> syn::Result<(Vec<Slot>, usize)> {
    let mut slots = Vec::with_capacity(h.fields.len());
    let mut offset: u32 = 0;
    for f in &h.fields {
        let bits = f.kind.bits();
        if (f.little_endian || matches!(f.kind, Kind::Array(_) | Kind::Address(_)))
            && !offset.is_multiple_of(8)
        {
            return Err(syn::Error::new_spanned(
                &f.width_ty,
                format!(
                    "field `{}` must start on a byte boundary, but the fields before it \
                     add up to {offset} bits; make them {} bits (add a `u{}` field?)",
                    f.ident,
                    offset.next_multiple_of(8),
                    8 - offset % 8
                ),
            ));
        }
        if f.checksum.is_some() && !offset.is_multiple_of(16) {
            // The internet checksum sums 16-bit words from the start of the
            // data: stored across a word boundary, its bytes land in the
            // wrong halves of two words and the header never verifies.
            return Err(syn::Error::new_spanned(
                &f.width_ty,
                format!(
                    "#[checksum] field `{}` must start on a 16-bit boundary (an even byte), \
                     but the fields before it add up to {offset} bits",
                    f.ident
                ),
            ));
        }
        slots.push(Slot { offset, bits });
        offset += bits;
    }
    if !offset.is_multiple_of(8) {
        let last = h.fields.last().expect("at least one field");
        let pad = 8 - offset % 8;
        return Err(syn::Error::new_spanned(
            &last.width_ty,
            format!(
                "the fields of `{}` add up to {offset} bits, which is not a whole number of \
                 bytes: {pad} bit{} missing after the last field `{}` (add a `u{pad}` field?)",
                h.ident,
                if pad == 1 { " is" } else { "s are" },
                last.ident,
            ),
        ));
    }
    Ok((slots, (offset / 8) as usize))
}

/// The smallest unsigned type holding `bits` bits (up to 128).
pub fn uint_type(bits: u32) -> Ident {
    let name = match bits {
        0..=8 => "u8",
        9..=16 => "u16",
        17..=32 => "u32",
        33..=64 => "u64",
        _ => "u128",
    };
    Ident::new(name, Span::call_site())
}

/// Bits in the type [`uint_type`] picks.
fn type_bits(bits: u32) -> u32 {
    bits.next_power_of_two().max(8)
}

/// A hex literal, digits grouped by four from the right when long:
/// `0x1fff`, `0x1_ffff_ffff`.
fn hex(v: u128) -> Literal {
    let digits = format!("{v:x}");
    let text = if digits.len() <= 4 {
        digits
    } else {
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 4 == 0 {
                grouped.push('_');
            }
            grouped.push(c);
        }
        grouped
    };
    format!("0x{text}").parse().expect("hex literal")
}

fn mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// `b[i]` for the bytes of a slot, zero-padded at the front to fill the
/// accumulator word: `[0, b[1], b[2], b[3]]`.
fn word_bytes(b: &Ident, slot: Slot, word_bits: u32) -> TokenStream {
    let span = slot.end_byte() - slot.first_byte();
    let pad = word_bits as usize / 8 - span;
    let zeros = (0..pad).map(|_| quote!(0));
    let idx = (slot.first_byte()..slot.end_byte()).map(Literal::usize_unsuffixed);
    quote!([#(#zeros,)* #(#b[#idx]),*])
}

/// An expression reading an unsigned field (typed as `uint_type(bits)`)
/// from the fixed-size array `b`.
pub fn read_uint(b: &Ident, slot: Slot) -> TokenStream {
    let storage = uint_type(slot.bits);
    let span_bytes = slot.end_byte() - slot.first_byte();
    let word_bits = type_bits(span_bytes as u32 * 8);
    let shift = (slot.end_byte() as u32 * 8) - (slot.offset + slot.bits);
    // Load the spanned bytes as one word.
    let mut e = if span_bytes == 1 {
        let first = Literal::usize_unsuffixed(slot.first_byte());
        quote!(#b[#first])
    } else {
        let word = uint_type(word_bits);
        let bytes = word_bytes(b, slot, word_bits);
        quote!(#word::from_be_bytes(#bytes))
    };
    // Drop the bits of the fields after this one...
    if shift > 0 {
        let s = Literal::u32_unsuffixed(shift);
        e = quote!((#e >> #s));
    }
    // ...and those of the fields before it (unless the cast to a storage
    // type exactly as wide as the field drops them anyway).
    let cast_truncates = word_bits != type_bits(slot.bits) && slot.bits == type_bits(slot.bits);
    if !slot.offset.is_multiple_of(8) && !cast_truncates {
        let m = hex(mask(slot.bits));
        e = quote!((#e & #m));
    }
    if word_bits != type_bits(slot.bits) {
        e = quote!((#e as #storage));
    }
    strip_parens(e)
}

/// Statements writing the storage-typed, already-masked value `v` into the
/// slot of `b`, leaving every other bit alone.
pub fn write_uint(b: &Ident, slot: Slot, v: &Ident) -> TokenStream {
    let storage_bits = type_bits(slot.bits);
    let first = slot.first_byte();
    let span_bytes = slot.end_byte() - first;
    let aligned = slot.offset.is_multiple_of(8) && slot.bits.is_multiple_of(8);
    if aligned {
        // Whole bytes: store the big-endian bytes, no read needed.
        if span_bytes == 1 {
            let i = Literal::usize_unsuffixed(first);
            return quote!(#b[#i] = #v;);
        }
        let skip = storage_bits as usize / 8 - span_bytes;
        let stores = (0..span_bytes).map(|k| {
            let i = Literal::usize_unsuffixed(first + k);
            let j = Literal::usize_unsuffixed(skip + k);
            quote!(#b[#i] = be[#j];)
        });
        return quote! {
            let be = #v.to_be_bytes();
            #(#stores)*
        };
    }
    let shift = (slot.end_byte() as u32 * 8) - (slot.offset + slot.bits);
    let field_mask = mask(slot.bits) << shift;
    if span_bytes == 1 {
        let i = Literal::usize_unsuffixed(first);
        let keep = hex(!field_mask & 0xff);
        let value = if shift > 0 {
            let s = Literal::u32_unsuffixed(shift);
            quote!((#v << #s))
        } else {
            quote!(#v)
        };
        return quote!(#b[#i] = (#b[#i] & #keep) | #value;);
    }
    let word_bits = type_bits(span_bytes as u32 * 8);
    let word = uint_type(word_bits);
    let keep = hex(!field_mask & mask(word_bits));
    let bytes = word_bytes(b, slot, word_bits);
    let widened = if word_bits == storage_bits {
        quote!(#v)
    } else {
        quote!((#v as #word))
    };
    let value = if shift > 0 {
        let s = Literal::u32_unsuffixed(shift);
        quote!((#widened << #s))
    } else {
        widened
    };
    let skip = word_bits as usize / 8 - span_bytes;
    let stores = (0..span_bytes).map(|k| {
        let i = Literal::usize_unsuffixed(first + k);
        let j = Literal::usize_unsuffixed(skip + k);
        quote!(#b[#i] = be[#j];)
    });
    quote! {
        let word = (#word::from_be_bytes(#bytes) & #keep) | #value;
        let be = word.to_be_bytes();
        #(#stores)*
    }
}

/// Removes one pair of outer parentheses added while building an expression.
fn strip_parens(e: TokenStream) -> TokenStream {
    let tokens: Vec<_> = e.clone().into_iter().collect();
    if let [proc_macro2::TokenTree::Group(g)] = tokens.as_slice() {
        if g.delimiter() == proc_macro2::Delimiter::Parenthesis {
            return g.stream();
        }
    }
    e
}

/// An expression reading a byte-aligned `u16`/`u32`/`u64` stored
/// little-endian: `u16::from_le_bytes([b[4], b[5]])`.
pub fn read_le(b: &Ident, slot: Slot) -> TokenStream {
    let ty = uint_type(slot.bits);
    let idx = (slot.first_byte()..slot.end_byte()).map(Literal::usize_unsuffixed);
    quote!(#ty::from_le_bytes([#(#b[#idx]),*]))
}

/// Statements writing `v` little-endian at a byte-aligned slot.
pub fn write_le(b: &Ident, slot: Slot, v: &Ident) -> TokenStream {
    let stores = (slot.first_byte()..slot.end_byte())
        .enumerate()
        .map(|(k, i)| {
            let i = Literal::usize_unsuffixed(i);
            let k = Literal::usize_unsuffixed(k);
            quote!(#b[#i] = le[#k];)
        });
    quote! {
        let le = #v.to_le_bytes();
        #(#stores)*
    }
}

/// Statements copying a byte-aligned run of `n` bytes out of `b` into a
/// local `[u8; n]` named `bytes`.
pub fn read_array(b: &Ident, slot: Slot) -> TokenStream {
    let start = Literal::usize_unsuffixed(slot.first_byte());
    let end = Literal::usize_unsuffixed(slot.end_byte());
    let n = Literal::usize_unsuffixed(slot.end_byte() - slot.first_byte());
    quote! {
        let mut bytes = [0u8; #n];
        bytes.copy_from_slice(&#b[#start..#end]);
    }
}

/// A statement writing `[u8; n]` value `v` at a byte-aligned slot.
pub fn write_array(b: &Ident, slot: Slot, v: &TokenStream) -> TokenStream {
    let start = Literal::usize_unsuffixed(slot.first_byte());
    let end = Literal::usize_unsuffixed(slot.end_byte());
    quote!(#b[#start..#end].copy_from_slice(&#v);)
}

/// The name of the generated view type.
pub fn view_ident(name: &Ident) -> Ident {
    format_ident!("{}View", name)
}

/// The mask literal for a field of `bits` bits, when narrower than its
/// storage type.
pub fn narrow_mask(bits: u32) -> Option<Literal> {
    (bits != type_bits(bits)).then(|| hex(mask(bits)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_literals_group_long_values() {
        assert_eq!(hex(0xf).to_string(), "0xf");
        assert_eq!(hex(0x1fff).to_string(), "0x1fff");
        assert_eq!(hex(0x1_ffff_ffff).to_string(), "0x1_ffff_ffff");
        assert_eq!(hex(u64::MAX.into()).to_string(), "0xffff_ffff_ffff_ffff");
    }

    #[test]
    fn slots_describe_bits_or_bytes() {
        let frag = Slot {
            offset: 51,
            bits: 13,
        };
        assert_eq!((frag.first_byte(), frag.end_byte()), (6, 8));
        assert_eq!(frag.describe(), "bits 51..64 (13 bits)");
        let addr = Slot {
            offset: 96,
            bits: 32,
        };
        assert_eq!(addr.describe(), "bytes 12..16");
        assert_eq!(Slot { offset: 3, bits: 1 }.describe(), "bits 3..4 (1 bit)");
    }

    #[test]
    fn reads_pick_the_narrowest_word() {
        let b = Ident::new("b", Span::call_site());
        let read = |offset, bits| read_uint(&b, Slot { offset, bits }).to_string();
        assert_eq!(read(4, 4), "b [0] & 0xf");
        assert_eq!(read(0, 4), "b [0] >> 4");
        assert_eq!(read(16, 16), "u16 :: from_be_bytes ([b [2] , b [3]])");
        assert_eq!(
            read(4, 33),
            "(u64 :: from_be_bytes ([0 , 0 , 0 , b [0] , b [1] , b [2] , b [3] , b [4]]) >> 3) & 0x1_ffff_ffff"
        );
        assert_eq!(
            read(8, 24),
            "u32 :: from_be_bytes ([0 , b [1] , b [2] , b [3]])"
        );
    }
}
