//! Files as spreadsheets write them, against the sandbox: Excel in French, German and Swedish locales
//! (semicolons, Windows-1252, CRLF, empty rows of delimiters), UTF-8 with a BOM, UTF-16 "Unicode text";
//! with braces and upper-case GUIDs, stray spaces and quoted line breaks. Exactly the right rows are
//! applied, exactly the bad rows are invalid, and the results open in the same spreadsheet.

use crate::common;

use crate::common::*;
use encoding_rs::WINDOWS_1252;

fn cp1252(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = WINDOWS_1252.encode(text);
    assert!(!unmappable, "test text fits Windows-1252");
    bytes.into_owned()
}

fn row_of(
    rows: &[std::collections::BTreeMap<String, String>],
    n: usize,
) -> &std::collections::BTreeMap<String, String> {
    &rows[n - 1]
}

#[test]
fn french_excel_billing_file() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let text = format!(
        "ID client;Nom de la société;Ville;Code postal;Pays\r\n\
         {};Société Générale d'Équipement;Besançon;25000;FR\r\n\
         ;;;;\r\n\
         {};Fabrikam « Rhône »;Lyon;69002;France\r\n\
         {};  Northwind Nordique  ;  Malmö ;211 34;se\r\n",
        CONTOSO.to_uppercase(),
        FABRIKAM,
        "{".to_owned() + NORTHWIND + "}",
    );
    // French Excel's headers are French: map them with --operation and the column names pcbulk knows.
    let text = text.replace(
        "ID client;Nom de la société;Ville;Code postal;Pays",
        "Customer ID;Company Name;City;Postal Code;Country",
    );
    let input = w.write("factures.csv", cp1252(&text));
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 1, "{}", common::text(&out));

    let rows = results(&w.path("factures.results.csv"));
    assert_eq!(rows.len(), 3, "the row of empty cells is not a row");
    assert_eq!(row_of(&rows, 1)["status"], "succeeded");
    assert_eq!(row_of(&rows, 2)["status"], "invalid");
    assert!(
        row_of(&rows, 2)["error_message"].contains("\"France\" is not an ISO 3166-1 country code"),
        "{:?}",
        rows[1]
    );
    assert_eq!(row_of(&rows, 2)["line"], "4", "line counts the empty row");
    assert_eq!(row_of(&rows, 3)["status"], "succeeded");

    let contoso = &sb.customer(CONTOSO)["billingProfile"];
    assert_eq!(
        contoso["companyName"], "Société Générale d'Équipement",
        "decoded from Windows-1252"
    );
    assert_eq!(contoso["defaultAddress"]["city"], "Besançon");
    let northwind = &sb.customer(NORTHWIND)["billingProfile"];
    assert_eq!(
        northwind["companyName"], "Northwind Nordique",
        "stray spaces trimmed"
    );
    assert_eq!(northwind["defaultAddress"]["country"], "SE");
    assert_eq!(
        sb.customer(FABRIKAM)["billingProfile"]["companyName"],
        "Fabrikam SARL",
        "invalid row never sent"
    );

    let bytes = std::fs::read(w.path("factures.results.csv")).unwrap();
    assert!(
        bytes.starts_with(b"\xef\xbb\xbf"),
        "a BOM, so Excel reads UTF-8"
    );
    let written = String::from_utf8(bytes).unwrap();
    assert!(
        written
            .lines()
            .next()
            .unwrap()
            .contains("Customer ID;Company Name"),
        "the input's semicolons"
    );
    assert!(written.contains("Société Générale d'Équipement"));
}

#[test]
fn german_excel_support_contacts_with_braces_upper_case_and_a_ragged_row() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let text = format!(
        "Customer ID;Subscription ID;Support Tenant ID;Partner ID;Name\r\n\
         {{{}}};{{{}}};{{{}}};  4391507 ;Müller IT GmbH\r\n\
         \r\n\
         {CONTOSO};d0000001-0000-4000-8000-000000000012;{TREY_TENANT};4391507;Trey Research;extra\r\n\
         {CONTOSO};d0000001-0000-4000-8000-000000000013;{TREY_TENANT};4391507;\"Trey Research\r\nZweigstelle Köln\"\r\n",
        CONTOSO.to_uppercase(),
        "D0000001-0000-4000-8000-000000000011",
        TREY_TENANT.to_uppercase(),
    );
    let input = w.write("kontakte.csv", cp1252(&text));
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 1, "{}", common::text(&out));
    let rows = results(&w.path("kontakte.results.csv"));
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, vec!["succeeded", "invalid", "succeeded"]);
    assert_eq!(rows[1]["error_code"], "ragged_row");
    assert!(
        rows[1]["error_message"].contains("6 cells but the header has 5"),
        "{}",
        rows[1]["error_message"]
    );
    assert_eq!(rows[2]["line"], "5");

    let c = sb.subscription("d0000001-0000-4000-8000-000000000011")["supportContact"].clone();
    assert_eq!(c["name"], "Müller IT GmbH");
    assert_eq!(
        c["supportTenantId"], TREY_TENANT,
        "sent lower-case, without braces"
    );
    assert_eq!(c["supportMpnId"], "4391507");
    let c = sb.subscription("d0000001-0000-4000-8000-000000000013")["supportContact"].clone();
    assert_eq!(
        c["name"], "Trey Research\r\nZweigstelle Köln",
        "a quoted line break is part of the value"
    );
    assert_eq!(
        sb.subscription("d0000001-0000-4000-8000-000000000012")["supportContact"]["supportMpnId"],
        "1000001"
    );
}

#[test]
fn swedish_excel_service_requests() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let text = "Service Request;Note;New Status\r\n\
                616122292874576;Åtgärdat – kunden är nöjd;Closed\r\n\
                616122292874577;\"Rad ett\r\nrad två\";\r\n\
                616122292874578;;Stängd\r\n\
                ;;\r\n";
    let input = w.write("ärenden.csv", cp1252(text));
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 1, "{}", common::text(&out));
    let rows = results(&w.path("ärenden.results.csv"));
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str()).collect();
    assert_eq!(statuses, vec!["succeeded", "succeeded", "invalid"]);
    assert!(
        rows[2]["error_message"].contains("\"Stängd\"")
            && rows[2]["error_message"].contains("open, closed, attention_needed")
    );
    let sr = sb.service_request("616122292874576");
    assert_eq!(sr["notes"][0]["text"], "Åtgärdat – kunden är nöjd");
    assert_eq!(sr["status"], "closed");
    assert_eq!(
        sb.service_request("616122292874577")["notes"][0]["text"],
        "Rad ett\r\nrad två"
    );
}

#[test]
fn utf8_with_bom_and_utf16_unicode_text() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let utf8 = w.write(
        "profile.csv",
        "\u{feff}Operation,Email,Website\nsupport-profile,support@adatum.example,www.adatum.example/hjälp\n",
    );
    let out = sb.apply(&utf8, &[]);
    assert_eq!(code(&out), 0, "{}", common::text(&out));
    assert_eq!(
        sb.state()["supportProfile"]["website"],
        "www.adatum.example/hjälp"
    );

    // Excel's "Unicode text": UTF-16LE with a BOM, tab-separated.
    let mut utf16 = vec![0xff, 0xfe];
    for u in "Customer ID\tCity\r\nc0000003-0000-4000-8000-000000000003\tÖrebro\r\n".encode_utf16()
    {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    let input = w.write("unicode.txt", utf16);
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", common::text(&out));
    assert_eq!(
        sb.customer(NORTHWIND)["billingProfile"]["defaultAddress"]["city"],
        "Örebro"
    );
}
