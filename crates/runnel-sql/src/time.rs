//! Dates, times and timestamps: the calendar arithmetic and the subset of
//! Java's `DateTimeFormatter` patterns (`yyyy-MM-dd HH:mm:ss.SSS` and
//! their parts, quoted literals) that ksqlDB's `TIMESTAMP_FORMAT` and time
//! functions take. Times are UTC.

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year, month and day of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `yyyy-MM-dd`.
pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(i64::from(days));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `HH:mm:ss`, with `.SSS` when there are milliseconds.
pub fn format_time(ms: i64) -> String {
    let ms = ms.rem_euclid(MS_PER_DAY);
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if milli == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}.{milli:03}")
    }
}

/// `yyyy-MM-ddTHH:mm:ss.SSS`, as ksqlDB shows timestamps.
pub fn format_timestamp(ms: i64) -> String {
    format_with_pattern(ms, "yyyy-MM-dd'T'HH:mm:ss.SSS").unwrap_or_default()
}

/// One piece of a pattern.
#[derive(Debug, PartialEq)]
enum Piece {
    /// A run of one pattern letter, and its length.
    Field(char, usize),
    Literal(String),
}

fn pieces(pattern: &str) -> Result<Vec<Piece>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let mut literal = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("the pattern {pattern} has an unclosed quote")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        literal.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(d) => {
                        literal.push(*d);
                        i += 1;
                    }
                }
            }
            out.push(Piece::Literal(literal));
        } else if c.is_ascii_alphabetic() {
            if !"yuMdHhmsSaDEX".contains(c) {
                return Err(format!("the pattern letter '{c}' is not supported"));
            }
            let start = i;
            while chars.get(i) == Some(&c) {
                i += 1;
            }
            out.push(Piece::Field(c, i - start));
        } else {
            out.push(Piece::Literal(c.to_string()));
            i += 1;
        }
    }
    Ok(out)
}

const MONTHS: [&str; 12] = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Formats a timestamp (ms since the epoch, UTC) with a Java pattern.
pub fn format_with_pattern(ms: i64, pattern: &str) -> Result<String, String> {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::new();
    for piece in pieces(pattern)? {
        match piece {
            Piece::Literal(text) => out.push_str(&text),
            Piece::Field(c, n) => {
                let number = |value: i64, out: &mut String| out.push_str(&format!("{value:0n$}"));
                match c {
                    'y' | 'u' if n == 2 => number(year.rem_euclid(100), &mut out),
                    'y' | 'u' => number(year, &mut out),
                    'M' if n >= 4 => out.push_str(MONTHS[month as usize - 1]),
                    'M' if n == 3 => out.push_str(&MONTHS[month as usize - 1][..3]),
                    'M' => number(i64::from(month), &mut out),
                    'd' => number(i64::from(day), &mut out),
                    'D' => number(days - days_from_civil(year, 1, 1) + 1, &mut out),
                    'H' => number(in_day / 3_600_000, &mut out),
                    'h' => number((in_day / 3_600_000 + 11) % 12 + 1, &mut out),
                    'm' => number(in_day / 60_000 % 60, &mut out),
                    's' => number(in_day / 1000 % 60, &mut out),
                    'S' => {
                        let millis = format!("{:03}", in_day % 1000);
                        out.push_str(&format!("{millis:0<n$}")[..n]);
                    }
                    'a' => out.push_str(if in_day < 43_200_000 { "AM" } else { "PM" }),
                    'E' => {
                        let weekday = WEEKDAYS[(days + 3).rem_euclid(7) as usize];
                        out.push_str(if n >= 4 { weekday } else { &weekday[..3] });
                    }
                    'X' => out.push('Z'),
                    _ => return Err(format!("the pattern letter '{c}' cannot be formatted")),
                }
            }
        }
    }
    Ok(out)
}

/// Parses `text` with a Java pattern into ms since the epoch (UTC).
/// Fields the pattern lacks default to the start of their range.
pub fn parse_with_pattern(text: &str, pattern: &str) -> Result<i64, String> {
    let fail = || format!("cannot parse '{text}' with the pattern '{pattern}'");
    let (mut year, mut month, mut day, mut hour, mut minute, mut second, mut milli, mut pm) = (1970i64, 1u32, 1u32, 0i64, 0i64, 0i64, 0i64, None);
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let pieces = pieces(pattern)?;
    for (index, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Literal(literal) => {
                for c in literal.chars() {
                    if chars.get(i) != Some(&c) {
                        return Err(fail());
                    }
                    i += 1;
                }
            }
            Piece::Field(c, n) => {
                // Adjacent numeric fields take exactly their width; a field
                // followed by a literal or the end takes all its digits.
                let next_is_field = matches!(pieces.get(index + 1), Some(Piece::Field(..)));
                let mut take_number = |max: usize| take_digits(&chars, &mut i, max, *c == 'y').ok_or_else(fail);
                let mut number = |max: usize| take_number(max).map(|(value, _)| value);
                let width = if next_is_field { *n } else { usize::MAX };
                match c {
                    'y' | 'u' => {
                        year = number(width)?;
                        if *n == 2 {
                            year += 2000;
                        }
                    }
                    'M' if *n >= 3 => {
                        let rest: String = chars[i..].iter().collect();
                        let found = MONTHS.iter().position(|m| if *n == 3 { rest.starts_with(&m[..3]) } else { rest.starts_with(m) }).ok_or_else(fail)?;
                        i += if *n == 3 { 3 } else { MONTHS[found].len() };
                        month = found as u32 + 1;
                    }
                    'M' => month = u32::try_from(number(width)?).map_err(|_| fail())?,
                    'd' => day = u32::try_from(number(width)?).map_err(|_| fail())?,
                    'H' | 'h' => hour = number(width)?,
                    'm' => minute = number(width)?,
                    's' => second = number(width)?,
                    'S' => {
                        let (digits, length) = take_number(if next_is_field { *n } else { 9 })?;
                        milli = if length >= 3 { digits / 10i64.pow(length - 3) } else { digits * 10i64.pow(3 - length) };
                    }
                    'a' => {
                        let rest: String = chars[i..].iter().collect::<String>().to_uppercase();
                        pm = Some(if rest.starts_with("PM") {
                            true
                        } else if rest.starts_with("AM") {
                            false
                        } else {
                            return Err(fail());
                        });
                        i += 2;
                    }
                    'X' => {
                        if chars.get(i) == Some(&'Z') {
                            i += 1;
                        } else {
                            return Err(fail());
                        }
                    }
                    _ => return Err(format!("the pattern letter '{c}' cannot be parsed")),
                }
            }
        }
    }
    if i != chars.len() {
        return Err(fail());
    }
    if let Some(pm) = pm {
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    if !(-1_000_000..=1_000_000).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..60).contains(&second)
    {
        return Err(fail());
    }
    Ok(days_from_civil(year, month, day) * MS_PER_DAY + hour * 3_600_000 + minute * 60_000 + second * 1000 + milli)
}

/// Reads up to `max` digits at `chars[*i..]` (a leading '-' too, when
/// `signed`); returns the number and how many digits it had.
fn take_digits(chars: &[char], i: &mut usize, max: usize, signed: bool) -> Option<(i64, u32)> {
    let start = *i;
    if signed && chars.get(*i) == Some(&'-') {
        *i += 1;
    }
    let digits_start = *i;
    while *i < chars.len() && chars[*i].is_ascii_digit() && *i - digits_start < max {
        *i += 1;
    }
    let text: String = chars[start..*i].iter().collect();
    Some((text.parse().ok()?, (*i - digits_start) as u32))
}

/// A `DATE` from `yyyy-MM-dd`.
pub fn parse_date(text: &str) -> Result<i32, String> {
    let ms = parse_with_pattern(text.trim(), "yyyy-MM-dd")?;
    i32::try_from(ms.div_euclid(MS_PER_DAY)).map_err(|_| format!("the date {text} is out of range"))
}

/// A `TIME` from `HH:mm[:ss[.SSS]]`.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let pattern = match text.len() {
        5 => "HH:mm",
        8 => "HH:mm:ss",
        _ => "HH:mm:ss.SSS",
    };
    parse_with_pattern(text, pattern)
}

/// A `TIMESTAMP` from ISO-8601 text (`yyyy-MM-dd[T| ]HH:mm[:ss[.SSS]][Z]`),
/// or a date alone.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let text = text.trim().trim_end_matches('Z');
    if text.len() == 10 {
        return parse_with_pattern(text, "yyyy-MM-dd");
    }
    let (date, time) = text.split_once(['T', ' ']).ok_or_else(|| format!("cannot parse '{text}' as a timestamp"))?;
    Ok(parse_with_pattern(date, "yyyy-MM-dd")? + parse_time(time)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calendar_round_trips() {
        for days in [-719_468, -1, 0, 1, 365, 10_957, 17_897, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(17_897), (2019, 1, 1));
        assert_eq!(format_date(18_321), "2020-02-29");
    }

    #[test]
    fn the_course_s_timestamps_parse_and_print() {
        let ms = parse_with_pattern("2019-01-01 00:37:38", "yyyy-MM-dd HH:mm:ss").unwrap();
        assert_eq!(ms, 1_546_303_058_000);
        assert_eq!(format_timestamp(ms), "2019-01-01T00:37:38.000");
        assert_eq!(format_with_pattern(ms, "dd/MM/yy hh:mm a").unwrap(), "01/01/19 12:37 AM");
        assert_eq!(format_with_pattern(ms, "EEEE, MMMM d").unwrap(), "Tuesday, January 1");
        assert_eq!(parse_timestamp("2019-01-01T00:37:38.5Z").unwrap(), ms + 500);
        assert_eq!(parse_with_pattern("20190101003738", "yyyyMMddHHmmss").unwrap(), ms);
        assert_eq!(parse_time("01:02").unwrap(), 3_720_000);
        assert_eq!(format_time(3_723_004), "01:02:03.004");
    }

    #[test]
    fn bad_text_and_patterns_are_refused() {
        assert!(parse_with_pattern("2019-02-30 00:00:00", "yyyy-MM-dd HH:mm:ss").is_err());
        assert!(parse_with_pattern("2019-01-01", "yyyy-MM-dd HH").is_err());
        assert!(parse_with_pattern("2019-01-01x", "yyyy-MM-dd").is_err());
        assert!(format_with_pattern(0, "yyyy 'open").is_err());
        assert!(format_with_pattern(0, "Q").is_err());
    }
}
