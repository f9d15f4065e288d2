//! Unsigned LEB128 numbers (7 bits a byte, low first), the stored forms' one number encoding
//! (sample tables, sketches); read back with every length and range checked, never a panic.

pub fn put(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a stored form; `what` names it in errors ("sample table cut short").
pub struct Reader<'a> {
    pub b: &'a [u8],
    pub at: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { b, at: 0, what }
    }
    pub fn byte(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.at).ok_or_else(|| format!("{} cut short", self.what))?;
        self.at += 1;
        Ok(v)
    }
    pub fn num(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("number too long in {}", self.what))
    }
    pub fn u32(&mut self) -> Result<u32, String> {
        u32::try_from(self.num()?).map_err(|_| format!("number out of range in {}", self.what))
    }
    /// A count, bounded so that a corrupt one cannot make a huge allocation.
    pub fn count(&mut self, max: usize) -> Result<usize, String> {
        let n = self.num()?;
        usize::try_from(n).ok().filter(|n| *n <= max).ok_or_else(|| format!("count {n} out of range in {}", self.what))
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let s = end.map(|e| &self.b[self.at..e]).ok_or_else(|| format!("{} cut short", self.what))?;
        self.at += n;
        Ok(s)
    }
    /// Everything was read.
    pub fn done(&self) -> Result<(), String> {
        if self.at == self.b.len() {
            Ok(())
        } else {
            Err(format!("trailing bytes after the {}", self.what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_damage_is_refused() {
        let mut b = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            put(&mut b, v);
        }
        let mut r = Reader::new(&b, "test");
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            assert_eq!(r.num().unwrap(), v);
        }
        assert!(r.done().is_ok());
        assert_eq!(Reader::new(&[0x80], "test").num().unwrap_err(), "test cut short");
        assert!(Reader::new(&[0xff; 11], "test").num().unwrap_err().contains("too long"));
        assert!(Reader::new(&[5], "test").count(4).is_err());
        assert!(Reader::new(&[1, 2], "test").take(usize::MAX).is_err());
    }
}
