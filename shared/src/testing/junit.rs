//! The JUnit XML report (`ferry test --junit FILE`), the format CI systems
//! read: one `<testsuite>` per test file, one `<testcase>` per case, a
//! `<failure>` with every mismatch for a case that failed.

use std::collections::BTreeMap;

use quick_xml::Writer;
use quick_xml::events::{BytesCData, BytesDecl, BytesEnd, BytesStart, Event};

use super::CaseResult;

/// `results` as a JUnit XML document.
pub fn report(results: &[CaseResult]) -> String {
    let mut suites: BTreeMap<String, Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        suites
            .entry(r.file.display().to_string())
            .or_default()
            .push(r);
    }
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let failed = |rs: &[&CaseResult]| rs.iter().filter(|r| !r.passed()).count().to_string();
    let secs = |rs: &[&CaseResult]| {
        format!(
            "{:.3}",
            rs.iter().map(|r| r.wall.as_secs_f64()).sum::<f64>()
        )
    };
    let all: Vec<&CaseResult> = results.iter().collect();
    // Writing to a Vec cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let mut top = BytesStart::new("testsuites");
    top.push_attribute(("name", "ferry test"));
    top.push_attribute(("tests", all.len().to_string().as_str()));
    top.push_attribute(("failures", failed(&all).as_str()));
    top.push_attribute(("time", secs(&all).as_str()));
    let _ = w.write_event(Event::Start(top));
    for (file, cases) in &suites {
        let mut suite = BytesStart::new("testsuite");
        suite.push_attribute(("name", file.as_str()));
        suite.push_attribute(("tests", cases.len().to_string().as_str()));
        suite.push_attribute(("failures", failed(cases).as_str()));
        suite.push_attribute(("time", secs(cases).as_str()));
        let _ = w.write_event(Event::Start(suite));
        for r in cases {
            let mut case = BytesStart::new("testcase");
            case.push_attribute(("classname", file.as_str()));
            case.push_attribute(("name", r.name.as_str()));
            case.push_attribute(("time", format!("{:.3}", r.wall.as_secs_f64()).as_str()));
            if r.passed() {
                let _ = w.write_event(Event::Empty(case));
                continue;
            }
            let _ = w.write_event(Event::Start(case));
            let mut failure = BytesStart::new("failure");
            let first = r.failures[0].lines().next().unwrap_or_default();
            failure.push_attribute(("message", first));
            let _ = w.write_event(Event::Start(failure));
            let text = r.failures.join("\n").replace("]]>", "]]]]><![CDATA[>");
            let _ = w.write_event(Event::CData(BytesCData::new(text)));
            let _ = w.write_event(Event::End(BytesEnd::new("failure")));
            let _ = w.write_event(Event::End(BytesEnd::new("testcase")));
        }
        let _ = w.write_event(Event::End(BytesEnd::new("testsuite")));
    }
    let _ = w.write_event(Event::End(BytesEnd::new("testsuites")));
    String::from_utf8(w.into_inner()).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use quick_xml::Reader;
    use quick_xml::events::Event;

    use super::*;

    fn result(name: &str, failures: &[&str]) -> CaseResult {
        CaseResult {
            file: PathBuf::from("tests/a.ferry.yaml"),
            name: name.into(),
            failures: failures.iter().map(|s| (*s).to_owned()).collect(),
            virtual_elapsed: Duration::ZERO,
            wall: Duration::from_millis(5),
        }
    }

    #[test]
    fn the_report_parses_and_counts_failures_with_awkward_text_escaped() {
        let xml = report(&[
            result("ok <one> & \"quoted\"", &[]),
            result(
                "broken",
                &["body.email: expected \"a\" ]]> got <b>", "second"],
            ),
        ]);
        let mut reader = Reader::from_str(&xml);
        let (mut cases, mut failures, mut text) = (Vec::new(), 0, String::new());
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "testcase" => {
                    let name = e.try_get_attribute("name").unwrap().unwrap();
                    cases.push(
                        name.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .unwrap()
                            .into_owned(),
                    );
                }
                Event::Start(e) if e.name().as_ref() == "failure" => failures += 1,
                Event::CData(t) => text.push_str(&t),
                _ => {}
            }
        }
        assert_eq!(cases, ["ok <one> & \"quoted\"", "broken"]);
        assert_eq!(failures, 1);
        assert!(text.contains("expected \"a\" ]]"), "{text}");
        assert!(text.contains("got <b>\nsecond"), "{text}");
    }
}
