//! Excel workbooks as partner admins keep them, applied with no conversion step: built here with
//! rust_xlsxwriter (French headers and accents, a date, numbers, a text cell with leading zeros, a
//! formula), applied to the sandbox, the results read back with the csv crate. And the workbooks
//! that must be refused (exit 2, a message naming what to do, nothing sent, never a panic): not a
//! zip, a zip bomb, a missing sheet, an old or password-protected workbook, a formula with no saved
//! value, a cell showing an error.

use crate::common;

use std::io::Cursor;

use crate::common::*;
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook, Worksheet};

/// A workbook of one sheet named `name`, filled by `fill`.
fn workbook(name: &str, fill: impl FnOnce(&mut Worksheet)) -> Vec<u8> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name(name).unwrap();
    fill(ws);
    wb.save_to_buffer().unwrap()
}

fn header(ws: &mut Worksheet, cells: &[&str]) {
    for (c, h) in cells.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
}

/// A refusal: exit 2, no panic, no results file, and the message on stderr.
fn refused(out: &std::process::Output, results: &std::path::Path) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(code(out), 2, "{}", text(out));
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !results.exists() || common::results(results).is_empty(),
        "nothing sent, no row written"
    );
    err
}

#[test]
fn a_french_workbook_applies_as_excel_shows_it() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let date = Format::new().set_num_format("dd/mm/yyyy");
    let bytes = workbook("Feuil1", |ws| {
        header(
            ws,
            &[
                "Customer ID",
                "Company Name",
                "City",
                "Postal Code",
                "Phone Number",
                "Date de mise à jour",
                "Numéro d'ordre",
                "Remarque",
            ],
        );
        ws.write_string(1, 0, CONTOSO).unwrap();
        ws.write_string(1, 1, "Société Générale d'Équipement")
            .unwrap();
        ws.write_string(1, 2, "Bourg-en-Bresse").unwrap();
        // Text, as a French admin types an Ain postal code: the leading zero is the value.
        ws.write_string(1, 3, "01000").unwrap();
        // A number: Excel shows 33612345678, not 33612345678.0.
        ws.write_number(1, 4, 33_612_345_678.0).unwrap();
        let day = ExcelDateTime::from_ymd(2026, 11, 23).unwrap();
        ws.write_datetime_with_format(1, 5, &day, &date).unwrap();
        ws.write_number(1, 6, 7.0).unwrap();
        ws.write_number(1, 7, 0.1 + 0.2).unwrap();
        // Row 3 left empty: not a row, but the next row's line is still its sheet row.
        ws.write_string(3, 0, FABRIKAM.to_uppercase()).unwrap();
        ws.write_string(3, 1, "Fabrikam « Rhône »").unwrap();
        ws.write_string(3, 2, "Lyon").unwrap();
        ws.write_string(3, 3, "69002").unwrap();
        ws.write_string(3, 4, "+33 4 72 00 00 01").unwrap();
        // A formula counts as the value Excel saved for it.
        ws.write_formula(3, 6, Formula::new("=G2+1").set_result("8"))
            .unwrap();
        ws.write_boolean(3, 7, true).unwrap();
    });
    let input = w.write("factures.xlsx", &bytes);
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));

    let results_path = w.path("factures.results.csv");
    let raw = std::fs::read(&results_path).unwrap();
    assert!(
        raw.starts_with(b"\xef\xbb\xbf"),
        "a BOM, so Excel reads UTF-8"
    );
    let (headers, rows) = table(&results_path);
    assert_eq!(headers[5], "Date de mise à jour", "headers as written");
    assert_eq!(rows.len(), 2, "the empty sheet row is not a row");
    let (first, second) = (&rows[0], &rows[1]);
    assert_eq!((first["row"].as_str(), first["line"].as_str()), ("1", "2"));
    assert_eq!(
        (second["row"].as_str(), second["line"].as_str()),
        ("2", "4"),
        "line is the sheet's row number"
    );
    assert_eq!(first["status"], "succeeded", "{first:?}");
    assert_eq!(second["status"], "succeeded", "{second:?}");
    assert_eq!(first["Postal Code"], "01000");
    assert_eq!(first["Phone Number"], "33612345678");
    assert_eq!(first["Date de mise à jour"], "2026-11-23");
    assert_eq!(first["Numéro d'ordre"], "7");
    assert_eq!(first["Remarque"], "0.3");
    assert_eq!(second["Numéro d'ordre"], "8");
    assert_eq!(second["Remarque"], "TRUE");

    let contoso = &sb.customer(CONTOSO)["billingProfile"];
    assert_eq!(contoso["companyName"], "Société Générale d'Équipement");
    assert_eq!(contoso["defaultAddress"]["postalCode"], "01000");
    assert_eq!(contoso["defaultAddress"]["phoneNumber"], "33612345678");
    let fabrikam = &sb.customer(FABRIKAM)["billingProfile"];
    assert_eq!(fabrikam["companyName"], "Fabrikam « Rhône »");
}

#[test]
fn sheet_picks_a_sheet_and_a_missing_one_names_those_there_are() {
    let w = Workdir::new();
    let mut wb = Workbook::new();
    let notes = wb.add_worksheet();
    notes.set_name("Notes").unwrap();
    notes.write_string(0, 0, "nothing to apply here").unwrap();
    let data = wb.add_worksheet();
    data.set_name("Données").unwrap();
    header(data, &["service_request_id", "note"]);
    data.write_string(1, 0, "616122292874576").unwrap();
    data.write_string(1, 1, "Repris par Trey Research").unwrap();
    let input = w.write("demandes.xlsx", wb.save_to_buffer().unwrap());

    let out = pcbulk()
        .args(["validate", "--sheet", "Données"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("demandes.Données.validation.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "valid");
    assert_eq!(rows[0]["note"], "Repris par Trey Research");

    let out = pcbulk()
        .args(["validate", "--sheet", "Feuil2"])
        .arg(&input)
        .output()
        .unwrap();
    let err = refused(&out, &w.path("nothing.csv"));
    assert!(err.contains("no sheet \"Feuil2\""), "{err}");
    assert!(err.contains("\"Notes\", \"Données\""), "{err}");
}

#[test]
fn a_file_named_xlsx_that_is_not_a_zip_is_refused() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let input = w.write("contacts.xlsx", contacts_csv(3));
    let out = sb.apply(&input, &[]);
    let err = refused(&out, &w.path("contacts.results.csv"));
    assert!(err.contains("not an Excel workbook"), "{err}");
    assert!(err.contains("give it a .csv name"), "{err}");
    assert_eq!(sb.stats()["total"], 0, "nothing sent: {}", sb.stats());
}

#[test]
fn a_zip_bomb_workbook_is_refused_before_it_is_unpacked() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    // A real workbook whose sheet's zip entries claim to unpack to 600 MiB.
    let xlsx = workbook("Sheet1", |ws| {
        header(ws, &["service_request_id", "note"]);
        ws.write_string(1, 0, "616122292874576").unwrap();
        ws.write_string(1, 1, "x".repeat(4096)).unwrap();
    });
    let padded = rewrite_part(&xlsx, "xl/worksheets/sheet1.xml", |xml| {
        // Whitespace between elements: valid XML, and it packs into almost nothing.
        xml.replacen(
            "<sheetData>",
            &format!("<sheetData>{}", " ".repeat(1 << 20)),
            1,
        )
    });
    // The sheet's uncompressed size, in its local header and in the central directory: found by
    // its value, and made to claim 600 MiB.
    let sheet_size = {
        let mut z = zip::ZipArchive::new(Cursor::new(&padded)).unwrap();
        let size = z.by_name("xl/worksheets/sheet1.xml").unwrap().size() as u32;
        size
    };
    assert!(sheet_size > 1 << 20);
    let mut bomb = padded.clone();
    let mut patched = 0;
    for i in 0..bomb.len() - 4 {
        if bomb[i..i + 4] == sheet_size.to_le_bytes() {
            bomb[i..i + 4].copy_from_slice(&(600u32 << 20).to_le_bytes());
            patched += 1;
        }
    }
    assert!(patched >= 2, "{patched}");
    let input = w.write("bomb.xlsx", &bomb);
    let out = sb.apply(&input, &[]);
    let err = refused(&out, &w.path("bomb.results.csv"));
    assert!(err.contains("zip bomb"), "{err}");
    assert!(err.contains("512 MiB"), "{err}");
    assert_eq!(sb.stats()["total"], 0, "nothing sent");
}

#[test]
fn an_old_or_password_protected_workbook_is_refused_with_what_to_save_it_as() {
    let w = Workdir::new();
    let mut ole = vec![0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];
    ole.extend(std::iter::repeat_n(0u8, 4096));
    let input = w.write("ancien.xls", &ole);
    let out = pcbulk().arg("validate").arg(&input).output().unwrap();
    let err = refused(&out, &w.path("ancien.validation.csv"));
    assert!(err.contains("Excel 97-2003"), "{err}");
    assert!(err.contains("Excel Workbook (*.xlsx)"), "{err}");
}

#[test]
fn a_formula_with_no_saved_value_is_refused_naming_its_cell() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let xlsx = workbook("Feuil1", |ws| {
        header(ws, &["service_request_id", "note"]);
        ws.write_string(1, 0, "616122292874576").unwrap();
        ws.write_string(1, 1, "first").unwrap();
        ws.write_string(2, 0, "616122292874577").unwrap();
        ws.write_formula(2, 1, Formula::new("=B2&\" again\"").set_result("SAVED"))
            .unwrap();
    });
    // As a tool that writes formulas without computing them leaves the cell: no saved value.
    let unsaved = rewrite_part(&xlsx, "xl/worksheets/sheet1.xml", |xml| {
        let xml = xml.replace("<v>SAVED</v>", "<v></v>");
        xml.replace(" t=\"str\"", "")
    });
    let input = w.write("notes.xlsx", &unsaved);
    let out = sb.apply(&input, &[]);
    let err = refused(&out, &w.path("notes.results.csv"));
    assert!(
        err.contains("sheet \"Feuil1\", cell B3 (column \"note\")"),
        "{err}"
    );
    assert!(err.contains("formula with no saved value"), "{err}");
    assert!(err.contains("paste it as values"), "{err}");
    assert_eq!(sb.stats()["total"], 0, "nothing sent");
}

#[test]
fn a_cell_showing_an_error_is_refused_naming_its_cell() {
    let w = Workdir::new();
    let xlsx = workbook("Feuil1", |ws| {
        header(ws, &["Customer ID", "Email"]);
        ws.write_string(1, 0, CONTOSO).unwrap();
        ws.write_formula(
            1,
            1,
            Formula::new("=VLOOKUP(A2,Contacts!A:B,2,FALSE)").set_result("#REF!"),
        )
        .unwrap();
    });
    let input = w.write("profils.xlsx", &xlsx);
    let out = pcbulk().arg("validate").arg(&input).output().unwrap();
    let err = refused(&out, &w.path("profils.validation.csv"));
    assert!(err.contains("cell B2 (column \"Email\")"), "{err}");
    assert!(err.contains("#REF!"), "{err}");
}

#[test]
fn a_powershell_export_with_its_type_line_applies() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    // What `Export-Csv` writes in Windows PowerShell 5.1 (without -NoTypeInformation).
    let csv = "#TYPE System.Management.Automation.PSCustomObject\r\n\
         \"service_request_id\";\"note\";\"new_status\"\r\n\
         \"616122292874576\";\"Pris en charge; rappel demain\";\"\"\r\n";
    let input = w.write("export.csv", csv);
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("export.results.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["line"], "3", "the #TYPE line is a line of the file");
    assert_eq!(rows[0]["row"], "1");
    assert_eq!(rows[0]["note"], "Pris en charge; rappel demain");
    assert_eq!(sb.note_counts()["Pris en charge; rappel demain"], 1);
}

#[test]
fn a_value_far_to_the_right_or_rows_out_of_order_are_refused_naming_the_cell() {
    let w = Workdir::new();
    let far = workbook("Feuil1", |ws| {
        header(ws, &["service_request_id", "note"]);
        ws.write_string(1, 0, "616122292874576").unwrap();
        ws.write_string(1, 1, "ok").unwrap();
        ws.write_string(1, 2000, "stray").unwrap();
    });
    let input = w.write("loin.xlsx", &far);
    let out = pcbulk().arg("validate").arg(&input).output().unwrap();
    let err = refused(&out, &w.path("loin.validation.csv"));
    assert!(err.contains("cell BXY2"), "{err}");
    assert!(err.contains("beyond column AMJ"), "{err}");

    let ordered = workbook("Feuil1", |ws| {
        header(ws, &["service_request_id", "note"]);
        ws.write_string(1, 0, "616122292874576").unwrap();
        ws.write_string(2, 0, "616122292874577").unwrap();
    });
    // Row 3 written before row 2: Excel never does, a hand-made file might.
    let swapped = rewrite_part(&ordered, "xl/worksheets/sheet1.xml", |xml| {
        let a = xml.find("<row r=\"2\"").unwrap();
        let b = xml.find("<row r=\"3\"").unwrap();
        let end = xml.find("</sheetData>").unwrap();
        format!("{}{}{}{}", &xml[..a], &xml[b..end], &xml[a..b], &xml[end..])
    });
    let input = w.write("desordre.xlsx", &swapped);
    let out = pcbulk().arg("validate").arg(&input).output().unwrap();
    let err = refused(&out, &w.path("desordre.validation.csv"));
    assert!(err.contains("cell A2"), "{err}");
    assert!(err.contains("out of order"), "{err}");
}

/// Found by an outside test: Excel stores no cell for an empty one at the end of a row, and such a
/// row was refused as ragged, with advice about CSV delimiters.
#[test]
fn a_row_whose_last_cells_are_empty_is_as_wide_as_its_header() {
    let w = Workdir::new();
    let input = w.write(
        "notes.xlsx",
        workbook("Feuil1", |ws| {
            header(ws, &["service_request_id", "note", "new_status"]);
            ws.write_string(1, 0, "616122292874576").unwrap();
            ws.write_string(1, 1, "une note").unwrap();
            ws.write_string(2, 0, "616122292874576").unwrap();
            ws.write_string(2, 2, "closed").unwrap();
        }),
    );
    let out = pcbulk().arg("validate").arg(&input).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("notes.validation.csv"));
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["status"].as_str(),
                r["note"].as_str(),
                r["new_status"].as_str(),
            )
        })
        .collect();
    assert_eq!(got, [("valid", "une note", ""), ("valid", "", "closed")]);
}

/// Found by an outside test: a hidden first sheet (an old copy, say) was read by default, though
/// the user never sees it in Excel.
#[test]
fn a_hidden_sheet_is_read_only_when_named() {
    let w = Workdir::new();
    let mut wb = Workbook::new();
    let old = wb.add_worksheet();
    old.set_name("Old").unwrap();
    header(old, &["service_request_id", "note"]);
    old.write_string(1, 0, "not-a-request").unwrap();
    old.write_string(1, 1, "stale").unwrap();
    old.set_hidden(true);
    let data = wb.add_worksheet();
    data.set_name("Data").unwrap();
    header(data, &["service_request_id", "note"]);
    data.write_string(1, 0, "616122292874576").unwrap();
    data.write_string(1, 1, "current").unwrap();
    data.set_active(true);
    let input = w.write("book.xlsx", wb.save_to_buffer().unwrap());

    let out = pcbulk().arg("validate").arg(&input).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        results(&w.path("book.validation.csv"))[0]["note"],
        "current"
    );

    let out = pcbulk()
        .args(["validate", "--sheet", "Old"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert_eq!(
        results(&w.path("book.Old.validation.csv"))[0]["note"],
        "stale"
    );

    let out = pcbulk()
        .args(["validate", "--sheet", "Missing"])
        .arg(&input)
        .output()
        .unwrap();
    let err = refused(&out, &w.path("nothing.csv"));
    assert!(err.contains("(hidden: \"Old\")"), "{err}");
}

/// Found by an outside test: a Zip Code column formatted `00000` shows `02134` in Excel but was
/// read, and sent, as `2134`. Each cell now reads as Excel shows it, its number format included.
#[test]
fn a_number_formatted_00000_arrives_as_excel_shows_it() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let zip = Format::new().set_num_format("00000");
    let phone = Format::new().set_num_format("000-000-0000");
    let as_text = Format::new().set_num_format("@");
    let stamp = Format::new().set_num_format("dd/mm/yyyy hh:mm");
    let percent = Format::new().set_num_format_index(10);
    let thousands = Format::new().set_num_format_index(4);
    let bytes = workbook("Sheet1", |ws| {
        header(
            ws,
            &[
                "Customer ID",
                "Postal Code",
                "Phone Number",
                "Reference",
                "Checked",
                "Share",
                "Amount",
            ],
        );
        ws.write_string(1, 0, CONTOSO).unwrap();
        ws.write_number_with_format(1, 1, 2134.0, &zip).unwrap();
        ws.write_number_with_format(1, 2, 6_175_550_123.0, &phone)
            .unwrap();
        // A number typed before its cell was formatted as Text: Excel shows it as General.
        ws.write_number_with_format(1, 3, 4_391_507.0, &as_text)
            .unwrap();
        let at = ExcelDateTime::from_ymd(2026, 11, 23)
            .unwrap()
            .and_hms(9, 30, 0)
            .unwrap();
        ws.write_datetime_with_format(1, 4, &at, &stamp).unwrap();
        ws.write_number_with_format(1, 5, 0.125, &percent).unwrap();
        ws.write_number_with_format(1, 6, 1234.5, &thousands)
            .unwrap();
    });
    let input = w.write("boston.xlsx", &bytes);
    let out = sb.apply(&input, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let rows = results(&w.path("boston.results.csv"));
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["status"], "succeeded", "{row:?}");
    assert_eq!(row["Postal Code"], "02134");
    assert_eq!(row["Phone Number"], "617-555-0123");
    assert_eq!(row["Reference"], "4391507");
    assert_eq!(row["Checked"], "2026-11-23T09:30:00");
    assert_eq!(row["Share"], "12.50%");
    assert_eq!(row["Amount"], "1,234.50");
    let address = &sb.customer(CONTOSO)["billingProfile"]["defaultAddress"];
    assert_eq!(address["postalCode"], "02134", "sent as shown");
    assert_eq!(address["phoneNumber"], "617-555-0123");
}

/// A number format pcbulk cannot render exactly is refused naming the cell, its format and what
/// to do: never a value that differs from what Excel shows.
#[test]
fn a_number_in_a_format_pcbulk_cannot_show_is_refused_naming_the_cell() {
    let sb = Sandbox::start(&[]);
    let w = Workdir::new();
    let fraction = Format::new().set_num_format("# ?/?");
    let bytes = workbook("Feuil1", |ws| {
        header(ws, &["Customer ID", "Postal Code"]);
        ws.write_string(1, 0, CONTOSO).unwrap();
        ws.write_string(1, 1, "02134").unwrap();
        ws.write_string(2, 0, FABRIKAM).unwrap();
        ws.write_number_with_format(2, 1, 2134.5, &fraction)
            .unwrap();
    });
    let input = w.write("fractions.xlsx", &bytes);
    let out = sb.apply(&input, &[]);
    let err = refused(&out, &w.path("fractions.results.csv"));
    assert!(
        err.contains("sheet \"Feuil1\", cell B3 (column \"Postal Code\")"),
        "{err}"
    );
    assert!(err.contains("\"# ?/?\""), "{err}");
    assert!(err.contains("fraction"), "{err}");
    assert!(err.contains("format the column as Text"), "{err}");
    assert_eq!(sb.stats()["total"], 0, "nothing sent: {}", sb.stats());
}
