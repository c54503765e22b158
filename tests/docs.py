"""Real test documents, generated: PDFs with canaries, Office files, HTML, code, odd encodings."""

from __future__ import annotations

import datetime
import gzip
import io
import re
import textwrap
import zipfile
from pathlib import Path
from typing import Any


def pdf_bytes(pages: list[str], *, encrypt: bool = False) -> bytes:
    import pymupdf

    doc = pymupdf.open()
    for text in pages:
        page = doc.new_page()
        y = 72
        for paragraph in text.split("\n"):
            for line in textwrap.wrap(paragraph, 90) or [""]:
                page.insert_text((72, y), line, fontsize=9)
                y += 12
    if encrypt:
        return bytes(doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o"))
    return bytes(doc.tobytes())


def pdf_with_lost_text(kind: str) -> bytes:
    """A page pymupdf4llm's Markdown left text out of: ``striped``, a table of coloured
    cells and no rules (taken for a drawing, its text skipped), ``turned``, lines set at
    90 degrees; ``pictured``, text over a picture; ``jpx``, a page of a picture MuPDF
    cannot decode between two of text; ``highlight``, a highlighted line and an underlined
    one beside a short vertical margin stamp."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), "Quarterly figures, CANARY-INTRO, as agreed.", fontsize=11)
    if kind in ("striped", "pictured"):
        for line in range(4):  # enough text kept that the page is not near empty
            words = f"A line below, number {line}, of ordinary words kept."
            page.insert_text((72, 720 + line * 14), words, fontsize=11)
    if kind == "striped":
        for row in range(12):
            for column in range(3):
                cell = pymupdf.Rect(
                    72 + column * 150, 100 + row * 20, 222 + column * 150, 120 + row * 20
                )
                shade = (0.8, 0.8, 1.0) if (row + column) % 2 else (1.0, 0.9, 0.8)
                page.draw_rect(cell, color=None, fill=shade)
                page.insert_text(
                    (cell.x0 + 4, cell.y1 - 6), f"cell R{row}C{column} value", fontsize=9
                )
    elif kind == "turned":
        for line in range(10):
            words = f"turned line {line} CANARY-TURN{line} with words"
            page.insert_text((100 + line * 20, 700), words, fontsize=11, rotate=90)
    elif kind == "pictured":
        page.insert_image(pymupdf.Rect(50, 90, 550, 500), stream=photo(400, 300, "PNG"))
        for line in range(8):
            words = f"Text over the picture, line {line} CANARY-OVER{line}."
            page.insert_text((72, 120 + line * 20), words, fontsize=11)
    elif kind == "jpx":
        # Page 2: a picture MuPDF cannot decode (a JPX stream of junk); page 3: text.
        broken = doc.new_page()
        broken.insert_text((72, 72), "The page of a broken picture, CANARY-JPX.", fontsize=11)
        broken.insert_image(pymupdf.Rect(72, 100, 300, 300), stream=photo(200, 150, "PNG"))
        xref = broken.get_images()[0][0]
        doc.update_stream(xref, b"not a JPEG 2000 stream", compress=False)
        doc.xref_set_key(xref, "Filter", "/JPXDecode")
        doc.new_page().insert_text((72, 72), "# The last page, CANARY-LAST.", fontsize=11)
    else:
        page.draw_rect(pymupdf.Rect(70, 89, 400, 103), color=None, fill=(1, 1, 0))
        page.insert_text((72, 100), "A highlighted line, CANARY-MARK.", fontsize=11)
        page.insert_text((72, 130), "An underlined term, CANARY-UNDER.", fontsize=11)
        page.draw_line((72, 132), (250, 132), width=0.6)  # MuPDF takes it for an underline
        page.insert_text((30, 600), "arXiv:2101.00001v1 [cs.CL] 1 Jan 2021", fontsize=9, rotate=90)
    return bytes(doc.tobytes())


def mobi_bytes(html: bytes, title: bytes = b"Book") -> bytes:
    """A Kindle MOBI e-book of ``html``, uncompressed: a Palm database (its header, the
    record list) whose record 0 holds the PalmDOC and MOBI headers (UTF-8), then the text
    in records of 4 KiB."""
    import struct

    texts = [html[i : i + 4096] for i in range(0, len(html), 4096)] or [b""]
    mobi = bytearray(232)
    mobi[0:4] = b"MOBI"
    for offset, value in ((4, 232), (8, 2), (12, 65001), (16, 1), (20, 6)):
        struct.pack_into(">I", mobi, offset, value)  # length, a book, UTF-8, id, version
    for offset in range(24, 64, 4):
        struct.pack_into(">I", mobi, offset, 0xFFFFFFFF)  # no index records
    for offset, value in ((64, len(texts) + 1), (68, 248), (72, len(title)), (92, 0xFFFFFFFF)):
        struct.pack_into(">I", mobi, offset, value)  # first non-text record, the title, no image
    first = struct.pack(">HHIHHHH", 1, 0, len(html), len(texts), 4096, 0, 0) + mobi + title
    records = [first + b"\0\0", *texts]
    header = bytearray(78)
    header[: len(title)] = title
    header[60:68] = b"BOOKMOBI"
    struct.pack_into(">H", header, 76, len(records))
    at = 78 + 8 * len(records) + 2
    listed = b""
    for number, record in enumerate(records):
        listed += struct.pack(">II", at, number * 2)
        at += len(record)
    return bytes(header) + listed + b"\0\0" + b"".join(records)


def pdf_with_attachments(
    pdf: bytes, embedded: dict[str, bytes], annotated: dict[str, bytes] | None = None
) -> bytes:
    """``pdf`` with files attached: ``embedded`` in its name tree (as Acrobat's "Attach
    file" and portfolios keep them), ``annotated`` as file attachment annotations (a
    paperclip icon) on its first page."""
    import pymupdf

    doc = pymupdf.open("pdf", pdf)
    for name, data in embedded.items():
        doc.embfile_add(name, data, filename=name)
    for i, (name, data) in enumerate((annotated or {}).items()):
        doc[0].add_file_annot((500, 72 + 30 * i), data, name)
    return bytes(doc.tobytes())


def xps_bytes(
    pages: list[list[tuple[str, float]] | bytes],
    *,
    open_xps: bool = False,
    pieces: bool = False,
) -> bytes:
    """An XPS document (as Windows' "Microsoft XPS Document Writer" prints one), or with
    ``open_xps`` an OpenXPS one (Windows 8 and later): each page's lines of text at a
    font size, Helvetica embedded, or a PNG filling the page (a scan). ``pieces``: each
    page part written in two pieces (``1.fpage/[0].piece``), as a package may be
    interleaved."""
    import pymupdf

    ns = (
        "http://schemas.openxps.org/oxps/v1.0"
        if open_xps
        else "http://schemas.microsoft.com/xps/2005/06"
    )
    types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org'
        '/package/2006/content-types"><Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/><Default Extension="fdseq" ContentType'
        '="application/vnd.ms-package.xps-fixeddocumentsequence+xml"/><Default Extension="fdoc"'
        ' ContentType="application/vnd.ms-package.xps-fixeddocument+xml"/><Default Extension='
        '"fpage" ContentType="application/vnd.ms-package.xps-fixedpage+xml"/><Default '
        'Extension="ttf" ContentType="application/vnd.ms-opentype"/><Default Extension="png" '
        'ContentType="image/png"/></Types>'
    )
    rels = (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="R0" Type="{ns}/fixedrepresentation" '
        'Target="/FixedDocumentSequence.fdseq"/>'
        "</Relationships>"
    )
    sequence = (
        f'<FixedDocumentSequence xmlns="{ns}"><DocumentReference '
        'Source="/Documents/1/FixedDocument.fdoc"/></FixedDocumentSequence>'
    )
    listed = "".join(
        f'<PageContent Source="/Documents/1/Pages/{n}.fpage"/>' for n in range(1, len(pages) + 1)
    )
    parts = {
        "[Content_Types].xml": types,
        "_rels/.rels": rels,
        "FixedDocumentSequence.fdseq": sequence,
        "Documents/1/FixedDocument.fdoc": f'<FixedDocument xmlns="{ns}">{listed}</FixedDocument>',
    }
    images = {}
    for n, lines in enumerate(pages, 1):
        if isinstance(lines, bytes):
            images[f"Resources/scan{n}.png"] = lines
            glyphs = (
                '<Path Data="M 0,0 L 816,0 816,1056 0,1056 Z"><Path.Fill><ImageBrush '
                f'ImageSource="/Resources/scan{n}.png" Viewbox="0,0,816,1056" ViewboxUnits='
                '"Absolute" Viewport="0,0,816,1056" ViewportUnits="Absolute"/></Path.Fill></Path>'
            )
        else:
            glyphs = "".join(
                f'<Glyphs Fill="#ff000000" FontUri="/Resources/helv.ttf" FontRenderingEmSize='
                f'"{size}" OriginX="96" OriginY="{96 + 40 * i}" UnicodeString="{text}"/>'
                for i, (text, size) in enumerate(lines)
            )
        page = f'<FixedPage xmlns="{ns}" Width="816" Height="1056">{glyphs}</FixedPage>'
        if pieces:
            half = len(page) // 2
            parts[f"Documents/1/Pages/{n}.fpage/[0].piece"] = page[:half]
            parts[f"Documents/1/Pages/{n}.fpage/[1].last.piece"] = page[half:]
        else:
            parts[f"Documents/1/Pages/{n}.fpage"] = page
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, text in parts.items():
            package.writestr(name, text)
        package.writestr("Resources/helv.ttf", pymupdf.Font("helv").buffer)
        for name, data in images.items():
            package.writestr(name, data)
    return out.getvalue()


def ole10native(filename: str, data: bytes, label: str | None = None) -> bytes:
    """An "Ole10Native" stream: a file put in a document with "Insert object > from file",
    as Office wraps it (oletools' layout: size, flags, label, source path, two longs,
    temporary path, size, data); its label the file's name unless given."""
    import struct

    source = f"C:\\Users\\me\\Documents\\{filename}".encode("cp1252")
    temp = f"C:\\Users\\me\\AppData\\Local\\Temp\\{filename}".encode("cp1252")
    body = (
        struct.pack("<H", 2)
        + (filename if label is None else label).encode("cp1252") + b"\0"
        + source + b"\0"
        + struct.pack("<II", 0x00030000, len(temp) + 1)
        + temp + b"\0"
        + struct.pack("<I", len(data))
        + data
    )  # fmt: skip
    return struct.pack("<I", len(body)) + body


_PACKAGE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/package"
_OLE_OBJECT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/oleObject"


def with_embedded(
    package: bytes, owner: str, objects: list[tuple[str, bytes, bool]], *, linked: str = ""
) -> bytes:
    """``package`` with ``objects`` (part name, bytes, whether an OLE object) embedded by
    the part ``owner`` (``word/document.xml``, ``ppt/slides/slide2.xml``), as Office
    relates them: an OOXML package by a "package" relationship, an OLE object's
    ``.bin`` by an "oleObject" one; ``linked``: a linked (external) object's target too."""
    folder = owner.split("/")[0]
    rels = f"{folder}/_rels/{owner.split('/', 1)[1]}.rels".replace(
        f"{folder}/_rels/slides/", f"{folder}/slides/_rels/"
    )
    entries = "".join(
        f'<Relationship Id="rIdEmb{i}" Type="{_OLE_OBJECT if ole else _PACKAGE}" '
        f'Target="../embeddings/{part}"/>'
        if owner.count("/") > 1
        else f'<Relationship Id="rIdEmb{i}" Type="{_OLE_OBJECT if ole else _PACKAGE}" '
        f'Target="embeddings/{part}"/>'
        for i, (part, _, ole) in enumerate(objects)
    )
    if linked:
        entries += (
            f'<Relationship Id="rIdLinked" Type="{_OLE_OBJECT}" Target="{linked}" '
            'TargetMode="External"/>'
        )
    added: dict[str, bytes | str] = {
        f"{folder}/embeddings/{part}": data for part, data, _ in objects
    }
    return _repacked(
        package,
        {rels: lambda text: text.replace("</Relationships>", f"{entries}</Relationships>")},
        added,
        types={f"{folder}/embeddings/{part}": "application/octet-stream" for part, _, _ in objects},
    )


def docx_bytes(title: str, sections: dict[str, str]) -> bytes:
    from docx import Document

    doc = Document()
    doc.add_heading(title, 0)
    for heading, body in sections.items():
        doc.add_heading(heading, 1)
        doc.add_paragraph(body)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def docx_runs(*paragraphs: list[tuple[str, str]]) -> bytes:
    """A DOCX of ``paragraphs``, each a list of runs: (text, "" or "bold", "italic",
    "superscript")."""
    from docx import Document

    doc = Document()
    for runs in paragraphs:
        paragraph = doc.add_paragraph()
        for text, style in runs:
            run = paragraph.add_run(text)
            if style == "superscript":
                run.font.superscript = True
            elif style:
                setattr(run, style, True)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


_RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _repacked(
    package: bytes,
    edits: dict[str, Any],
    added: dict[str, bytes | str],
    relations: dict[str, list[tuple[str, str, str]]] | None = None,
    types: dict[str, str] | None = None,
) -> bytes:
    """An OOXML package with ``edits`` (part -> a function of its text) applied, parts
    ``added``, their ``relations`` (rels part -> (Id, type, target)) and content ``types``
    (part name -> type) declared."""
    edits = dict(edits)
    for rels, entries in (relations or {}).items():
        links = "".join(
            f'<Relationship Id="{i}" Type="{_RELATIONSHIPS}/{kind}" Target="{target}"/>'
            for i, kind, target in entries
        )
        edits[rels] = lambda text, links=links: text.replace(
            "</Relationships>", f"{links}</Relationships>"
        )
    if types:
        overrides = "".join(
            f'<Override PartName="/{part}" ContentType="{kind}"/>' for part, kind in types.items()
        )
        edits["[Content_Types].xml"] = lambda text: text.replace("</Types>", f"{overrides}</Types>")
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(package)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy,
    ):
        for info in source.infolist():
            data = source.read(info)
            if info.filename in edits:
                data = edits[info.filename](data.decode()).encode()
            copy.writestr(info, data)
        for name, content in added.items():
            copy.writestr(name, content)
    return out.getvalue()


_WML = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_with_notes(paragraphs: list[str], notes: dict[str, list[str]]) -> bytes:
    """A DOCX of ``paragraphs`` in which ``[[fn2]]`` or ``[[en3]]`` cites footnote 2 or
    endnote 3; ``notes``: ``"fn2"`` -> the note's paragraphs. Its notes parts hold
    the separator notes (IDs 0 and 1) Word writes, related and typed as Word does."""
    from html import escape

    from docx import Document

    doc = Document()
    for text in paragraphs:
        doc.add_paragraph(text)
    buf = io.BytesIO()
    doc.save(buf)

    def reference(match: Any) -> str:
        kind, number = match[1], match[2]
        element = "footnoteReference" if kind == "fn" else "endnoteReference"
        return (
            f'</w:t></w:r><w:r><w:rPr><w:vertAlign w:val="superscript"/></w:rPr>'
            f'<w:{element} w:id="{number}"/></w:r><w:r><w:t xml:space="preserve">'
        )

    def part(kind: str) -> str:
        tag = "footnote" if kind == "fn" else "endnote"
        body = "".join(
            f'<w:{tag} w:id="{key[2:]}"><w:p><w:r><w:{tag}Ref/></w:r>'
            + "".join(f"<w:r><w:tab/><w:t>{escape(line)}</w:t></w:r>" for line in lines[:1])
            + "</w:p>"
            + "".join(f"<w:p><w:r><w:t>{escape(line)}</w:t></w:r></w:p>" for line in lines[1:])
            + f"</w:{tag}>"
            for key, lines in notes.items()
            if key.startswith(kind)
        )
        separators = (
            f'<w:{tag} w:type="separator" w:id="0"><w:p><w:r><w:separator/></w:r></w:p></w:{tag}>'
            f'<w:{tag} w:type="continuationSeparator" w:id="1"><w:p><w:r>'
            f"<w:continuationSeparator/></w:r></w:p></w:{tag}>"
        )
        return f'<w:{tag}s xmlns:w="{_WML}">{separators}{body}</w:{tag}s>'

    types = "application/vnd.openxmlformats-officedocument.wordprocessingml"
    return _repacked(
        buf.getvalue(),
        {"word/document.xml": lambda text: re.sub(r"\[\[(fn|en)(\d+)\]\]", reference, text)},
        {"word/footnotes.xml": part("fn"), "word/endnotes.xml": part("en")},
        {
            "word/_rels/document.xml.rels": [
                ("rIdFn", "footnotes", "footnotes.xml"),
                ("rIdEn", "endnotes", "endnotes.xml"),
            ]
        },
        {f"word/{n}.xml": f"{types}.{n}+xml" for n in ("footnotes", "endnotes")},
    )


def docx_with_text_box(text: str) -> bytes:
    """A DOCX whose second paragraph anchors a DrawingML text box (a callout) holding
    ``text``, as Word writes one."""
    from docx import Document
    from docx.oxml import parse_xml

    ns = (
        'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
        'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
        'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
        'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"'
    )
    doc = Document()
    doc.add_paragraph("Before the box.")
    doc.add_paragraph()._p.append(
        parse_xml(
            f'<w:r {ns}><w:drawing><wp:anchor distT="0" distB="0" distL="0" distR="0" '
            'simplePos="0" relativeHeight="1" behindDoc="0" locked="0" layoutInCell="1" '
            'allowOverlap="1"><wp:simplePos x="0" y="0"/><wp:positionH relativeFrom="column">'
            "<wp:posOffset>0</wp:posOffset></wp:positionH><wp:positionV relativeFrom="
            '"paragraph"><wp:posOffset>0</wp:posOffset></wp:positionV><wp:extent cx="1000000" '
            'cy="500000"/><wp:wrapNone/><wp:docPr id="1" name="Box"/><a:graphic><a:graphicData '
            'uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"><wps:wsp>'
            f"<wps:txbx><w:txbxContent><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:txbxContent>"
            "</wps:txbx><wps:bodyPr/></wps:wsp></a:graphicData></a:graphic></wp:anchor>"
            "</w:drawing></w:r>"
        )
    )
    doc.add_paragraph("After the box.")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def docx_with_pictures(parts: list[str | bytes]) -> bytes:
    """A DOCX of paragraphs (``str``) and pictures (image ``bytes``), in order."""
    from docx import Document
    from docx.shared import Inches

    doc = Document()
    for part in parts:
        if isinstance(part, str):
            doc.add_paragraph(part)
        else:
            doc.add_picture(io.BytesIO(part), width=Inches(5))
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def pptx_with_picture(title: str, picture: bytes) -> bytes:
    """A two-slide deck: a slide of text, then ``title`` over ``picture``."""
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    first = prs.slides.add_slide(prs.slide_layouts[1])
    first.shapes.title.text = "Agenda"
    first.placeholders[1].text = "The typed slide comes first."
    second = prs.slides.add_slide(prs.slide_layouts[5])
    second.shapes.title.text = title
    from PIL import Image

    width, height = Image.open(io.BytesIO(picture)).size
    scale = min(8 / width, 5.5 / height)  # inches per pixel, to fit the slide's body
    second.shapes.add_picture(
        io.BytesIO(picture), Inches(1), Inches(1.5), Inches(width * scale), Inches(height * scale)
    )
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


Tree = list[tuple[str, "Tree"]]
_DGM = "http://schemas.openxmlformats.org/drawingml/2006/diagram"
_DRAWING = "http://schemas.openxmlformats.org/drawingml/2006/main"


def smartart_data(tree: Tree) -> bytes:
    """A SmartArt data part as PowerPoint writes one: the document point, a point per
    node (a line break in its text makes two paragraphs), transition and presentation points
    with the connections to them, and ``parOf`` connections in order under each parent."""
    from html import escape

    points = ['<dgm:pt modelId="{0}" type="doc"><dgm:prSet/><dgm:spPr/></dgm:pt>']
    links = []
    counter = iter(range(1, 10_000))

    def add(parent: str, nodes: Tree) -> None:
        for order, (text, children) in enumerate(nodes):
            key, par, sib, pres = (f"{{{next(counter)}}}" for _ in range(4))
            paragraphs = "".join(
                f'<a:p><a:r><a:rPr lang="en-US"/><a:t>{escape(line)}</a:t></a:r></a:p>'
                for line in text.split("\n")
            )
            points.append(
                f'<dgm:pt modelId="{key}"><dgm:prSet phldrT="[Text]"/><dgm:spPr/>'
                f"<dgm:t><a:bodyPr/><a:lstStyle/>{paragraphs}</dgm:t></dgm:pt>"
            )
            for kind, transition in (("parTrans", par), ("sibTrans", sib)):
                points.append(
                    f'<dgm:pt modelId="{transition}" type="{kind}" cxnId="{{c{key}}}">'
                    "<dgm:prSet/><dgm:spPr/><dgm:t><a:bodyPr/><a:lstStyle/><a:p>"
                    '<a:endParaRPr lang="en-US"/></a:p></dgm:t></dgm:pt>'
                )
            points.append(f'<dgm:pt modelId="{pres}" type="pres"><dgm:prSet/></dgm:pt>')
            links.append(
                f'<dgm:cxn modelId="{{c{key}}}" srcId="{parent}" destId="{key}" '
                f'srcOrd="{order}" destOrd="0" parTransId="{par}" sibTransId="{sib}"/>'
            )
            links.append(
                f'<dgm:cxn modelId="{{p{key}}}" type="presOf" srcId="{key}" destId="{pres}" '
                'srcOrd="0" destOrd="0"/>'
            )
            add(key, children)

    add("{0}", tree)
    links.reverse()  # the order is the connections' srcOrd, not the list's
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><dgm:dataModel '
        f'xmlns:dgm="{_DGM}" xmlns:a="{_DRAWING}"><dgm:ptLst>{"".join(points)}</dgm:ptLst>'
        f"<dgm:cxnLst>{''.join(links)}</dgm:cxnLst><dgm:bg/><dgm:whole/></dgm:dataModel>"
    ).encode()


def pptx_with_diagram(tree: Tree, *, titled: bool = True) -> bytes:
    """A deck of one slide holding a SmartArt diagram of ``tree``, under a title unless
    ``titled`` is False (the diagram is then all the slide holds), with speaker notes."""
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5 if titled else 6])
    if titled:
        slide.shapes.title.text = "Delivery process"
    slide.notes_slide.notes_text_frame.text = "Walk through the steps."
    buf = io.BytesIO()
    deck.save(buf)
    frame = (
        '<p:graphicFrame><p:nvGraphicFramePr><p:cNvPr id="40" name="Diagram 1"/>'
        "<p:cNvGraphicFramePr/><p:nvPr/></p:nvGraphicFramePr><p:xfrm>"
        '<a:off x="914400" y="1828800"/><a:ext cx="6096000" cy="3048000"/></p:xfrm>'
        f'<a:graphic><a:graphicData uri="{_DGM}"><dgm:relIds xmlns:dgm="{_DGM}" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
        'r:dm="rIdDgm"/></a:graphicData></a:graphic></p:graphicFrame>'
    )
    return _repacked(
        buf.getvalue(),
        {"ppt/slides/slide1.xml": lambda text: text.replace("</p:spTree>", f"{frame}</p:spTree>")},
        {"ppt/diagrams/data1.xml": smartart_data(tree)},
        {"ppt/slides/_rels/slide1.xml.rels": [("rIdDgm", "diagramData", "../diagrams/data1.xml")]},
        {
            "ppt/diagrams/data1.xml": "application/vnd.openxmlformats-officedocument."
            "drawingml.diagramData+xml"
        },
    )


def docx_with_diagram(tree: Tree) -> bytes:
    """A DOCX whose second paragraph draws a SmartArt diagram of ``tree``, inline, as
    Word writes one (its data part related to the document)."""
    from docx import Document

    doc = Document()
    doc.add_paragraph("The process has three steps.")
    doc.add_paragraph("DIAGRAM-HERE")
    doc.add_paragraph("Each step has an owner.")
    buf = io.BytesIO()
    doc.save(buf)
    drawing = (
        '<w:r><w:drawing><wp:inline distT="0" distB="0" distL="0" distR="0" xmlns:wp='
        '"http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing">'
        '<wp:extent cx="5486400" cy="3200400"/><wp:docPr id="7" name="Diagram 7"/>'
        f'<wp:cNvGraphicFramePr/><a:graphic xmlns:a="{_DRAWING}"><a:graphicData uri="{_DGM}">'
        f'<dgm:relIds xmlns:dgm="{_DGM}" xmlns:r="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships" r:dm="rIdDgm" r:lo="rIdLo" r:qs="rIdQs" '
        'r:cs="rIdCs"/></a:graphicData></a:graphic></wp:inline></w:drawing></w:r>'
    )
    return _repacked(
        buf.getvalue(),
        {
            "word/document.xml": lambda text: re.sub(
                r"<w:r>(?:(?!</w:r>).)*?DIAGRAM-HERE.*?</w:r>", drawing, text
            )
        },
        {"word/diagrams/data1.xml": smartart_data(tree)},
        {"word/_rels/document.xml.rels": [("rIdDgm", "diagramData", "diagrams/data1.xml")]},
    )


def photo(width: int = 640, height: int = 480, fmt: str = "JPEG") -> bytes:
    """A picture with no text in it: two flat colours."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (30, 120, 200))
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, width // 2, height // 2), "orange")
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def pptx_bytes(slides: list[tuple[str, str]]) -> bytes:
    from pptx import Presentation

    prs = Presentation()
    for title, body in slides:
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


def empty_office(kind: str) -> bytes:
    """An Office file with nothing written in it, as the libraries' templates are:
    ``docx``, ``pptx`` (no slides), ``blank-slide`` (one slide, no shapes), ``xlsx``."""
    buf = io.BytesIO()
    if kind == "docx":
        from docx import Document

        Document().save(buf)
    elif kind in ("pptx", "blank-slide"):
        from pptx import Presentation

        deck = Presentation()
        if kind == "blank-slide":
            deck.slides.add_slide(deck.slide_layouts[6])  # the "Blank" layout
        deck.save(buf)
    else:
        import openpyxl

        openpyxl.Workbook().save(buf)
    return buf.getvalue()


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def orders_xlsx_bytes(*, chart_sheet: bool = False) -> bytes:
    """A workbook with a title above its table, odd cells and a second sheet; with
    ``chart_sheet``, one openpyxl (under docling) cannot read back."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Orders"
    sheet.append(["Orders export, CANARY-TITLE"])
    sheet.append([])
    sheet.append(["order", "placed", "qty", "price", "note", None])
    sheet.append(["A-1", datetime.datetime(2024, 1, 2), 3, 1.5, "fragile | glass"])
    sheet.append(["A-2", datetime.datetime(2024, 1, 3, 9, 30), 4.0, 2.25, "line\nbreak"])
    sheet.append([])
    sheet.append(["A-3", None, 7])
    book.create_sheet("Stock").append(["sku", "on hand"])
    book["Stock"].append(["CANARY-SKU", 12])
    if chart_sheet:
        book.create_chartsheet("Chart")
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def xls_bytes(rows: list[list[object]]) -> bytes:
    """An Excel 97-2003 workbook (BIFF8, in a compound file)."""
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Legacy")
    dates = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, datetime.date):
                sheet.write(r, c, value, dates)
            else:
                sheet.write(r, c, value)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def encrypted_xls_bytes(rows: list[list[object]], password: str) -> bytes:
    """:func:`xls_bytes` encrypted as Excel encrypts a BIFF8 workbook with RC4
    ([MS-XLS] 2.2.10, [MS-OFFCRYPTO] 2.3.6): a FilePass record after the BOF, then
    each record's data XORed with the RC4 key stream at its place in the stream, the
    key made again every 1024 bytes."""
    import hashlib
    import struct

    import olefile

    def rc4(key: bytes, data: bytes) -> bytes:
        box, j = list(range(256)), 0
        for i in range(256):
            j = (j + box[i] + key[i % len(key)]) % 256
            box[i], box[j] = box[j], box[i]
        out, i, j = bytearray(), 0, 0
        for byte in data:
            i = (i + 1) % 256
            j = (j + box[i]) % 256
            box[i], box[j] = box[j], box[i]
            out.append(byte ^ box[(box[i] + box[j]) % 256])
        return bytes(out)

    salt, verifier = bytes(range(16)), bytes(range(100, 116))
    truncated = hashlib.md5(password.encode("utf-16-le")).digest()[:5]
    truncated = hashlib.md5((truncated + salt) * 16).digest()[:5]

    def key(block: int) -> bytes:
        return hashlib.md5(truncated + struct.pack("<I", block)).digest()

    checked = rc4(key(0), verifier + hashlib.md5(verifier).digest())
    file_pass = struct.pack("<HHHHH", 0x2F, 54, 1, 1, 1) + salt + checked
    with olefile.OleFileIO(xls_bytes(rows)) as ole:
        plain = ole.openstream("Workbook").read()
    end = 0
    while end + 4 <= len(plain) and plain[end : end + 4] != bytes(4):  # xlwt pads with zeros
        end += 4 + struct.unpack_from("<H", plain, end + 2)[0]
    bof = 4 + struct.unpack_from("<H", plain, 2)[0]
    stream = bytearray(plain[:bof] + file_pass + plain[bof:end])
    stream_key = b"".join(rc4(key(b), bytes(1024)) for b in range(len(stream) // 1024 + 1))
    # Left in the clear: BOF, FilePass, InterfaceHdr, UsrExcl, FileLock, RRDInfo, RRDHead.
    clear = {0x809, 0x2F, 0xE1, 0x194, 0x195, 0x196, 0x138}
    at = 0
    while at < len(stream):
        number, size = struct.unpack_from("<HH", stream, at)
        start = at + 4
        if number == 0x85:  # BoundSheet8: its lbPlyPos, the sheet's place, moved, clear
            struct.pack_into("<I", stream, start, struct.unpack_from("<I", stream, start)[0] + 58)
            start += 4
        if number not in clear:
            for n in range(start, at + 4 + size):
                stream[n] ^= stream_key[n]
        at += 4 + size
    return cfb_bytes({"Workbook": bytes(stream)})


_ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"'
)


def odf_bytes(
    kind: str,
    body: str,
    *,
    styles: str = "",
    encrypted: bool = False,
    members: dict[str, bytes] | None = None,
    mime: str | None = None,
) -> bytes:
    """An OpenDocument file (``spreadsheet``, ``text``, ``presentation`` or ``drawing``,
    its ``mime`` kind ``graphics``) whose office:body holds ``body``: its mimetype first
    and stored, as the format requires.
    ``encrypted``: the manifest says its content is encrypted, as a password makes it.
    ``members``: more files in the archive (``Pictures/1.png``)."""
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODF_NS} '
        f'office:version="1.2"><office:automatic-styles>{styles}</office:automatic-styles>'
        f"<office:body><office:{kind}>{body}</office:{kind}></office:body>"
        "</office:document-content>"
    )
    mime = f"application/vnd.oasis.opendocument.{mime or kind}"
    encryption = (
        '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="x"/>'
        if encrypted
        else ""
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
        '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mime}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        f"{encryption}</manifest:file-entry></manifest:manifest>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), mime)
        archive.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
        for member, data in (members or {}).items():
            archive.writestr(member, data)
    return buf.getvalue()


def flat_odf_bytes(
    kind: str,
    body: str,
    *,
    styles: str = "",
    office_styles: str = "",
    meta: str = "",
    mime: str | None = None,
) -> bytes:
    """The flat form of :func:`odf_bytes` (a ``.fodt``, ``.fods``, ``.fodp``): one XML
    document, as LibreOffice saves one, its named ``office_styles`` and ``meta`` (a
    ``dc:title``) in it too; a picture in ``body`` is an ``office:binary-data``."""
    mime = f"application/vnd.oasis.opendocument.{mime or kind}"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n\n<office:document {_ODF_NS} '
        f'office:version="1.3" office:mimetype="{mime}">\n'
        f"<office:meta>{meta}</office:meta><office:styles>{office_styles}</office:styles>"
        f"<office:automatic-styles>{styles}</office:automatic-styles>"
        f"<office:body><office:{kind}>{body}</office:{kind}></office:body></office:document>"
    ).encode()


def flat_opc_bytes(package: bytes, progid: str | None = "Word.Document") -> bytes:
    """An Office package (DOCX, PPTX) as Word saves a "Word XML Document" (Flat OPC):
    each member a ``pkg:part`` of its content type, XML inline, the rest base64 in
    lines; Office's processing instruction first, unless ``progid`` is None."""
    import base64
    import re

    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        types = archive.read("[Content_Types].xml").decode()
        defaults = dict(re.findall(r'Default Extension="([^"]+)" ContentType="([^"]+)"', types))
        overrides = dict(re.findall(r'Override PartName="([^"]+)" ContentType="([^"]+)"', types))
        parts = []
        for member in archive.namelist():
            if member == "[Content_Types].xml":
                continue
            data = archive.read(member)
            kind = overrides.get(f"/{member}") or defaults.get(member.rpartition(".")[2], "")
            if member.endswith((".xml", ".rels")):
                xml = re.sub(rb"^<\?xml[^>]*\?>\s*", b"", data).decode()
                body = f"<pkg:xmlData>{xml}</pkg:xmlData>"
            else:
                body = f"<pkg:binaryData>{base64.encodebytes(data).decode()}</pkg:binaryData>"
            parts.append(
                f'<pkg:part pkg:name="/{member}" pkg:contentType="{kind}">{body}</pkg:part>'
            )
    instruction = f'<?mso-application progid="{progid}"?>' if progid else ""
    return (
        f'<?xml version="1.0" standalone="yes"?>{instruction}<pkg:package xmlns:pkg='
        f'"http://schemas.microsoft.com/office/2006/xmlPackage">{"".join(parts)}</pkg:package>'
    ).encode()


def odf_chart(title: str, rows: list[tuple[str, str]]) -> str:
    """A bar chart's own document (what a package keeps as "Object 1/content.xml"), as
    LibreOffice writes one: its title, then its data table under a header row, a missing
    value "NaN"."""
    chart_ns = 'xmlns:chart="urn:oasis:names:tc:opendocument:xmlns:chart:1.0"'

    def cell(text: str) -> str:
        return f"<table:table-cell><text:p>{text}</text:p></table:table-cell>"

    data = "".join(f"<table:table-row>{cell(a)}{cell(b)}</table:table-row>" for a, b in rows)
    return (
        f'<office:document {_ODF_NS} {chart_ns} office:mimetype="application/vnd.oasis.'
        'opendocument.chart"><office:body><office:chart><chart:chart chart:class="chart:bar">'
        f"<chart:title><text:p>{title}</text:p></chart:title><chart:plot-area/>"
        '<table:table table:name="local-table"><table:table-header-rows><table:table-row>'
        f"{cell('')}{cell('Units')}</table:table-row></table:table-header-rows>"
        f"<table:table-rows>{data}</table:table-rows></table:table></chart:chart>"
        "</office:chart></office:body></office:document>"
    )


def ods_bytes(rows: list[list[str | int]], flat: bool = False) -> bytes:
    """An OpenDocument spreadsheet with one sheet, "Calc". ``flat``: as a ``.fods``."""

    def cell(value: str | int) -> str:
        kind = f'"float" office:value="{value}"' if isinstance(value, int) else '"string"'
        cell = f"<text:p>{value}</text:p>"
        return f"<table:table-cell office:value-type={kind}>{cell}</table:table-cell>"

    body = "".join(f"<table:table-row>{''.join(map(cell, row))}</table:table-row>" for row in rows)
    build = flat_odf_bytes if flat else odf_bytes
    return build("spreadsheet", f'<table:table table:name="Calc">{body}</table:table>')


def odt_bytes(flat: bool = False) -> bytes:
    """An OpenDocument text as LibreOffice writes one: a Title-styled paragraph, headings,
    a table of contents, spacing elements, a footnote, a comment, a tracked deletion,
    nested lists, a text box and a table padded with repeated empty cells. ``flat``: as
    a ``.fodt``."""
    styles = (
        '<style:style style:name="P1" style:parent-style-name="Title"/>'
        '<text:list-style style:name="N1"><text:list-level-style-number text:level="1" '
        'style:num-format="1"/><text:list-level-style-bullet text:level="2"/></text:list-style>'
    )
    body = (
        "<text:tracked-changes><text:changed-region><text:deletion><text:p>CANARY-DELETED"
        "</text:p></text:deletion></text:changed-region></text:tracked-changes>"
        '<text:p text:style-name="P1">Field manual</text:p>'
        "<text:table-of-content><text:index-body><text:p>Safety\t3</text:p>"
        "</text:index-body></text:table-of-content>"
        '<text:h text:outline-level="1">Safety</text:h>'
        '<text:p>CANARY-ODT wear\n     gloves<text:s text:c="2"/>at all times'
        "<text:note><text:note-citation>1</text:note-citation><text:note-body><text:p>"
        "CANARY-FOOTNOTE since 2019</text:p></text:note-body></text:note>."
        "<office:annotation><text:p>CANARY-COMMENT fix this</text:p></office:annotation>"
        "<text:line-break/>New line.</text:p>"
        '<text:h text:outline-level="2">Kit</text:h>'
        "<text:list><text:list-item><text:p>helmet</text:p><text:list><text:list-item>"
        "<text:p>chin strap</text:p></text:list-item></text:list></text:list-item>"
        "<text:list-item><text:p>boots</text:p></text:list-item></text:list>"
        '<text:list text:style-name="N1"><text:list-item><text:p>check straps</text:p>'
        "<text:list><text:list-item><text:p>twice</text:p></text:list-item></text:list>"
        "</text:list-item><text:list-item><text:p>sign</text:p></text:list-item></text:list>"
        "<text:p>See box.<draw:frame><draw:text-box><text:p>CANARY-BOX aside</text:p>"
        "</draw:text-box></draw:frame></text:p>"
        '<table:table table:name="Sizes"><table:table-row><table:table-cell><text:p>size'
        "</text:p></table:table-cell><table:table-cell><text:p>count</text:p>"
        '</table:table-cell><table:table-cell table:number-columns-repeated="1020"/>'
        "</table:table-row><table:table-row><table:table-cell><text:p>L | XL</text:p>"
        "</table:table-cell><table:table-cell><text:p>4</text:p></table:table-cell>"
        '</table:table-row><table:table-row table:number-rows-repeated="1000">'
        '<table:table-cell table:number-columns-repeated="1022"/></table:table-row>'
        "</table:table>"
    )
    return (flat_odf_bytes if flat else odf_bytes)("text", body, styles=styles)


def odp_bytes(slides: list[tuple[str, str, str]], flat: bool = False) -> bytes:
    """An OpenDocument presentation: per slide (title, bullet, speaker notes), with a
    footer placeholder on every slide. ``flat``: as a ``.fodp``."""

    def frame(cls: str, text: str) -> str:
        return (
            f'<draw:frame presentation:class="{cls}"><draw:text-box>{text}'
            "</draw:text-box></draw:frame>"
        )

    body = "".join(
        f'<draw:page draw:name="p{n}">{frame("title", f"<text:p>{title}</text:p>")}'
        + frame("outline", f"<text:list><text:list-item><text:p>{bullet}</text:p>"
                "</text:list-item></text:list>")
        + frame("footer", "<text:p>ACME confidential</text:p>")
        + f"<presentation:notes><draw:page-thumbnail/>{frame('notes', f'<text:p>{notes}</text:p>')}"
        "</presentation:notes></draw:page>"
        for n, (title, bullet, notes) in enumerate(slides, start=1)
    )  # fmt: skip
    return (flat_odf_bytes if flat else odf_bytes)("presentation", body)


def epub_bytes(
    chapters: list[tuple[str, str]], *, drm: bool = False, members: dict[str, bytes] | None = None
) -> bytes:
    """An EPUB 3 book: (title, paragraph) chapters, a navigation document in the spine,
    and the spine's order not the manifest's. ``drm``: its chapters listed as encrypted.
    ``members``: more files, under OEBPS/ (``images/1.png``, ``../images/1.png`` from a
    chapter)."""
    items = "".join(
        f'<item id="c{n}" href="text/c%20{n}.xhtml" media-type="application/xhtml+xml"/>'
        for n in range(len(chapters))
    )
    spine = "".join(f'<itemref idref="c{n}"/>' for n in reversed(range(len(chapters))))
    opf = (
        '<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" '
        'version="3.0"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<dc:title>CANARY-BOOK Field Guide</dc:title></metadata><manifest>"
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        f'{items}</manifest><spine><itemref idref="nav"/>{spine}</spine></package>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        archive.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:'
            'opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/book.opf" '
            'media-type="application/oebps-package+xml"/></rootfiles></container>',
        )
        archive.writestr("OEBPS/book.opf", opf)
        archive.writestr(
            "OEBPS/nav.xhtml",
            "<html><body><nav><ol><li>CANARY-NAV contents</li></ol></nav></body></html>",
        )
        for n, (title, text) in enumerate(chapters):
            archive.writestr(
                f"OEBPS/text/c {n}.xhtml",  # a space: its href is URL-encoded
                '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/'
                f'xhtml"><head><title>{title}</title></head><body><h1>{title}</h1>'
                f"<p>{text}</p></body></html>",
            )
        for member, data in (members or {}).items():
            archive.writestr(f"OEBPS/{member}", data)
        if drm:
            refs = "".join(
                '<EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#"><CipherData>'
                f'<CipherReference URI="OEBPS/text/c%20{n}.xhtml"/></CipherData></EncryptedData>'
                for n in range(len(chapters))
            )
            archive.writestr(
                "META-INF/encryption.xml",
                '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                f"{refs}</encryption>",
            )
    return buf.getvalue()


def zip_bomb_docx(expanded: int = 600 * 1024 * 1024) -> bytes:
    """A DOCX-shaped archive with one member that expands enormously."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(expanded // len(block)):
                member.write(block)
    return buf.getvalue()


LONG_PROSE = " ".join(
    f"Sentence {i} of the long report talks about topic {i % 7} in some detail." for i in range(400)
)


def legacy_office(name: str) -> bytes:
    """A Word or PowerPoint 97-2003 file LibreOffice wrote (tests/fixtures/legacy/make.py):
    ``memo.doc``, ``locked.doc`` (password "secret") or ``deck.ppt``."""
    return gzip.decompress(
        (Path(__file__).parent / "fixtures" / "legacy" / f"{name}.gz").read_bytes()
    )


def word97_streams(
    pieces: list[tuple[str, bool]], stories: dict[int, int], encrypted: bool = False
) -> tuple[bytes, bytes]:
    """A Word 97 file's ``WordDocument`` and ``1Table`` streams (MS-DOC), its text in
    ``pieces`` (text, 8-bit: cp1252 rather than UTF-16) one after another; ``stories``:
    FibRgLw97's character counts by place (3 the main text, 4 footnotes, 5 headers, 9
    text boxes). Only what the piece table needs: no formatting, no sections."""
    import struct

    flags = 0x0200 | (0x0100 if encrypted else 0)
    counts = [0] * 22
    for place, count in stories.items():
        counts[place] = count
    fib = struct.pack("<HH6xH20xH28xH", 0xA5EC, 0x00C1, flags, 14, 22)
    fib += struct.pack("<22i", *counts) + struct.pack("<H", 93)
    text_at = 2048
    data, pcds, cps = b"", b"", [0]
    for chars, eight_bit in pieces:
        fc = text_at + len(data)
        encoded = chars.encode("cp1252" if eight_bit else "utf-16-le")
        pcds += struct.pack("<HIH", 0, (fc * 2) | 0x40000000 if eight_bit else fc, 0)
        data += encoded
        cps.append(cps[-1] + len(chars))
    plc = struct.pack(f"<{len(cps)}I", *cps) + pcds
    clx = b"\x01" + struct.pack("<h", 2) + b"\x00\x00"  # one Prc, skipped
    clx += b"\x02" + struct.pack("<I", len(plc)) + plc
    pairs = [0] * (93 * 2)
    pairs[66:68] = [16, len(clx)]  # fcClx, lcbClx: the Clx at byte 16 of the table
    fib += struct.pack(f"<{len(pairs)}I", *pairs)
    word_document = fib.ljust(text_at, b"\0") + data
    return word_document, b"\0" * 16 + clx


def word6_stream(
    stories: list[str],
    *,
    lid: int = 0x0409,
    charset: int = 0,
    encoding: str = "cp1252",
    pieces: list[tuple[int, int]] | None = None,
    fonts: tuple[tuple[int, str], ...] = (),
) -> bytes:
    """A Word 6.0 file's ``WordDocument`` stream (the FIB as LibreOffice's ww8scan.cxx
    reads it): ``stories`` (main text, footnotes, headers, macros, comments, endnotes,
    text boxes) one after another, 8-bit in ``encoding``, the FIB naming ``lid`` and
    ``charset``. ``pieces``, as (first, last) character spans of the stories' text, makes
    it fast-saved: the text written in the reverse order of the spans, a piece table
    putting it back. ``fonts``, as (charset, name), is its font table (STTBFFN)."""
    import struct

    text = "".join(stories).encode(encoding)
    text_at = 1024
    flags = 0x0004 if pieces else 0
    fib = struct.pack("<HHHHHH", 0xA5DC, 101, 0, lid, 0, flags).ljust(0x14, b"\0")
    fib += struct.pack("<HHII", charset, 0, text_at, text_at + len(text)).ljust(0x34 - 0x14, b"\0")
    fib += struct.pack(
        "<7i", *[len(s.encode(encoding)) for s in stories], *[0] * (7 - len(stories))
    )
    body = text
    clx = b""
    if pieces:
        body, places = b"", {}
        for first, last in reversed(pieces):
            places[first] = text_at + len(body)
            body += text[first:last]
        cps = [first for first, _ in pieces] + [pieces[-1][1]]
        pcds = b"".join(struct.pack("<HIH", 0, places[first], 0) for first, _ in pieces)
        plc = struct.pack(f"<{len(cps)}I", *cps) + pcds
        clx = b"\x02" + struct.pack("<I", len(plc)) + plc
    clx_at = text_at + len(body)
    table = b"".join(
        bytes([len(name) + 6, 0x16])
        + struct.pack("<H", 400)
        + bytes([chs, 0])
        + name.encode()
        + b"\0"
        for chs, name in fonts
    )
    table = struct.pack("<H", len(table) + 2) + table
    fib = fib.ljust(0xD0, b"\0") + struct.pack("<II", clx_at + len(clx), len(table))
    fib = fib.ljust(0x160, b"\0") + struct.pack("<II", clx_at, len(clx))
    return fib.ljust(text_at, b"\0") + body + clx + table


_VISIO = "http://schemas.microsoft.com/office/visio/2012/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"


def vsdx_bytes(pages: list[tuple[str, str, str]], *, listed: bool = True) -> bytes:
    """A Visio drawing: ``pages`` of (name, part name, the ``<Shapes>`` XML inside), listed
    in ``visio/pages/pages.xml`` in that order (unless ``listed`` is False)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/visio/document.xml" '
            'ContentType="application/vnd.ms-visio.drawing.main+xml"/></Types>',
        )
        package.writestr("visio/document.xml", f'<VisioDocument xmlns="{_VISIO}"/>')
        listing, links = [], []
        for n, (name, part, shapes) in enumerate(pages, start=1):
            listing.append(
                f"<Page ID='{n}' NameU='{name}' Name='{name}'><Rel r:id='rId{n}'/></Page>"
            )
            links.append(f'<Relationship Id="rId{n}" Target="{part}" Type="page"/>')
            package.writestr(
                f"visio/pages/{part}",
                f"<PageContents xmlns='{_VISIO}'><Shapes>{shapes}</Shapes></PageContents>",
            )
        if listed:
            package.writestr(
                "visio/pages/pages.xml",
                f"<Pages xmlns='{_VISIO}' xmlns:r='http://schemas.openxmlformats.org/"
                f"officeDocument/2006/relationships'>{''.join(listing)}</Pages>",
            )
            package.writestr(
                "visio/pages/_rels/pages.xml.rels",
                f'<Relationships xmlns="{_RELS}">{"".join(links)}</Relationships>',
            )
    return out.getvalue()


def tnef(name: str) -> bytes:
    """An Outlook TNEF stream from tnefparse's test data (tests/fixtures/tnef):
    ``missing-filenames``, ``rtf`` or ``umlaut``."""
    return gzip.decompress(
        (Path(__file__).parent / "fixtures" / "tnef" / f"{name}.tnef.gz").read_bytes()
    )


def corpus() -> dict[str, bytes]:
    """name -> bytes: one of each supported type, each with a canary."""
    return {
        "reports/annual.pdf": pdf_bytes(
            [
                "Annual report\nCANARY-PDF-PAGE-ONE revenue grew.",
                "Second page\nCANARY-PDF-PAGE-TWO costs fell.",
            ]
        ),
        "reports/long.pdf": pdf_bytes([LONG_PROSE[i : i + 3500] for i in range(0, 14000, 3500)]),
        "reports/board.pdf": pdf_with_attachments(
            pdf_bytes(["Board pack\nCANARY-PDF-COVER the minutes are attached."]),
            {
                "minutes.docx": docx_bytes(
                    "Minutes", {"Decisions": "CANARY-PDFATTACH the board approved the budget."}
                )
            },
        ),
        "media/standup.vtt": (
            b"WEBVTT\n\n1\n00:00:01.000 --> 00:00:04.000\n<v Alice>The CANARY-VTT release "
            b"ships on\n\n2\n00:00:04.000 --> 00:00:06.500\n<v Alice>Friday after the "
            b"review.\n\n3\n00:00:07.000 --> 00:00:09.000\n<v Bob>Agreed.\n"
        ),
        "docs/figures.docx": with_embedded(
            docx_bytes("Figures", {"Sales": "The sales table is embedded below."}),
            "word/document.xml",
            [
                (
                    "Microsoft_Excel_Worksheet.xlsx",
                    xlsx_bytes([["region", "sales"], ["CANARY-EMBEDDED north region", 12]]),
                    False,
                )
            ],
        ),
        "mail/invite.ics": (
            b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nDTSTART:20261201T090000Z\r\n"
            b"SUMMARY:Launch review\r\nLOCATION:Room 7\r\nDESCRIPTION:CANARY-ICS bring the "
            b"launch\\nchecklist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        ),
        "print/statement.xps": xps_bytes(
            [[("Statement", 20), ("CANARY-XPS balance carried forward to March.", 12)]]
        ),
        "docs/handbook.docx": docx_bytes(
            "Handbook",
            {"Onboarding": "CANARY-DOCX new hires get a laptop.", "Leave": "Policy text."},
        ),
        "docs/deck.pptx": pptx_bytes([("Intro", "Welcome"), ("Roadmap", "CANARY-PPTX ship in Q3")]),
        "docs/memo.doc": legacy_office("memo.doc"),
        "docs/strategy.ppt": legacy_office("deck.ppt"),
        "docs/network.vsdx": vsdx_bytes(
            [("Network", "page1.xml", "<Shape ID='1'><Text>CANARY-VSDX core router</Text></Shape>")]
        ),
        "docs/sheet.xlsx": xlsx_bytes([["item", "qty"], ["CANARY-XLSX widgets", 42]]),
        "docs/manual.odt": odf_bytes(
            "text", "<text:h>Manual</text:h><text:p>CANARY-ODT keep the manual dry.</text:p>"
        ),
        "docs/talk.odp": odp_bytes([("Talk", "CANARY-ODP slides from Impress", "say hi")]),
        "docs/floor.odg": odf_bytes(
            "drawing",
            '<draw:page draw:name="p1"><draw:custom-shape><text:p>CANARY-ODG rack A holds the '
            "core router</text:p></draw:custom-shape></draw:page>",
            mime="graphics",
        ),
        "docs/guide.epub": epub_bytes([("Guide", "CANARY-EPUB chapters read in order.")]),
        "web/page.html": b"<html><body><h1>Web</h1><p>CANARY-HTML hello web.</p></body></html>",
        "web/saved.mhtml": (
            b"From: <Saved by Blink>\r\nSubject: Saved\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/related; type="text/html"; boundary="B"\r\n\r\n--B\r\n'
            b"Content-Type: text/html; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            b"<html><body><p>CANARY-MHTML saved pages are re=\r\nad whole.</p></body></html>"
            b"\r\n--B--\r\n"
        ),
        "docs/readme.md": b"# Readme\n\n## Install\n\nCANARY-MD run pip install.\n",
        "code/app.py": b'def ingest(uri):\n    """CANARY-PY ingest one uri."""\n    return uri\n',
        "code/main.go": (
            b'package main\n\n// CANARY-GO entry point\nfunc main() { println("hi") }\n'
        ),
        "code/index.ts": (
            b"export function greet(name: string): string {\n  // CANARY-TS\n  return name;\n}\n"
        ),
        "text/utf16.txt": "CANARY-UTF16 caf\u00e9 na\u00efve".encode("utf-16"),
        "logs/app.log.1.gz": gzip.compress(
            b"2026-11-30 12:00:01 ERROR CANARY-GZ disk full on /var/lib/store\n"
        ),
        "text/latin1.txt": "CANARY-LATIN1 caf\u00e9 cr\u00e8me br\u00fbl\u00e9e".encode("latin-1"),
        "text/notes.txt": ("CANARY-LONGTEXT " + LONG_PROSE).encode(),
        "scans/contract.pdf": scanned_pdf(
            ["Service contract\nCANARY-SCAN the supplier repairs pumps within two days."]
        ),
        "scans/receipt.png": scan_image(["Receipt 0042", "CANARY-PNG paid in full by card"]),
        "exports/wiki.zip": zip_bytes(
            {
                "wiki/Onboarding.md": b"# Onboarding\n\nCANARY-ZIP badges wait at reception.\n",
                "wiki/policy.pdf": pdf_bytes(["Travel policy\nCANARY-ZIPPDF book trains."]),
            }
        ),
    }


def tar_bytes(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A tar archive of ``files`` (name -> bytes), then symbolic ``links`` (name -> target)."""
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buf.getvalue()


def notebook_bytes(*cells: dict[str, Any], language: str = "python") -> bytes:
    """A Jupyter notebook (nbformat 4) of ``cells``: ``markdown_cell``/``code_cell``."""
    import json

    meta = {"language_info": {"name": language}}
    return json.dumps(
        {"nbformat": 4, "nbformat_minor": 5, "metadata": meta, "cells": list(cells)}
    ).encode()


def markdown_cell(*lines: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": list(lines)}


def code_cell(source: str, *outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "metadata": {},
        "execution_count": 1,
        "source": source,
        "outputs": list(outputs),
    }


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A zip archive of ``files`` (name -> bytes), deflated, in order."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def write(directory: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def scanned_pdf(pages: list[str], *, stamp: str | None = None, dpi: int = 150) -> bytes:
    """A PDF of scanned pages: each page of ``pdf_bytes(pages)`` as a grey PNG filling a
    page with no text layer (but ``stamp``, written over the image, as a scanner's page
    stamp would be)."""
    import pymupdf

    source = pymupdf.open("pdf", pdf_bytes(pages))
    doc = pymupdf.open()
    for number, page in enumerate(source, start=1):
        image = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY).tobytes("png")
        scan = doc.new_page(width=page.rect.width, height=page.rect.height)
        scan.insert_image(scan.rect, stream=image)
        if stamp:
            scan.insert_text((20, scan.rect.height - 20), f"{stamp} {number}", fontsize=7)
    return bytes(doc.tobytes())


def outlined_pdf(pages: list[str], *, footer: str | None = None) -> bytes:
    """A PDF whose text is converted to outlines, as a print-ready poster's is: each page
    of ``pdf_bytes(pages)`` drawn as filled paths with no font (but ``footer``, kept as
    text, as a page number set apart would be)."""
    import pymupdf

    source = pymupdf.open("pdf", pdf_bytes(pages))
    doc = pymupdf.open()
    for page in source:
        svg = page.get_svg_image(text_as_path=True)
        drawn = pymupdf.open("pdf", pymupdf.open("svg", svg.encode()).convert_to_pdf())
        doc.insert_pdf(drawn)
        if footer:
            doc[-1].insert_text((72, doc[-1].rect.height - 36), footer, fontsize=9)
    return bytes(doc.tobytes())


def scan_image(lines: list[str], fmt: str = "PNG", frames: int = 1) -> bytes:
    """An image of ``lines`` of text as a scanner saves it (``frames`` pages of a TIFF,
    each page's lines ending in its number)."""
    import pymupdf
    from PIL import Image

    pictures = []
    for number in range(1, frames + 1):
        text = "\n".join(lines if frames == 1 else [f"{line} {number}" for line in lines])
        page = pymupdf.open("pdf", pdf_bytes([text]))[0]
        png = page.get_pixmap(dpi=150, colorspace=pymupdf.csGRAY).tobytes("png")
        pictures.append(Image.open(io.BytesIO(png)))
    buf = io.BytesIO()
    pictures[0].save(buf, fmt, save_all=frames > 1, append_images=pictures[1:])
    return buf.getvalue()


def text_image(lines: list[tuple[str, float]]) -> bytes:
    """A PNG of ``lines``, each (text, font size in points), as a screenshot holds them."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=420, height=40 + sum(2 * size for _, size in lines))
    y = 20.0
    for text, size in lines:
        y += 1.5 * size
        page.insert_text((20, y), text, fontsize=size)
    return bytes(page.get_pixmap(dpi=150).tobytes("png"))


def pdf_with_image(text: str) -> bytes:
    """A two-page PDF whose second page holds a (noisy, so incompressible) PNG image."""
    import os

    import pymupdf

    pixmap = pymupdf.Pixmap(pymupdf.csRGB, 96, 96, os.urandom(96 * 96 * 3), False)
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), text, fontsize=11)
    page = doc.new_page()
    page.insert_text((72, 72), "Figure 1 below.", fontsize=11)
    page.insert_image(pymupdf.Rect(72, 100, 272, 300), stream=pixmap.tobytes("png"))
    return bytes(doc.tobytes())


def pdf_with_running_lines(pages: int = 6) -> bytes:
    """A report whose pages carry a running header and a numbered footer."""
    import pymupdf

    body = "Revenue grew because the sales team closed enterprise deals in the north. " * 5
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page()
        page.insert_text((72, 40), "ACME Corp - Confidential", fontsize=8)
        page.insert_text((72, 90), f"Chapter {number}", fontsize=22)
        page.insert_textbox(pymupdf.Rect(72, 110, 520, 700), f"{body}CANARY-{number}.", fontsize=11)
        if number <= 2:  # on two pages only: kept
            page.insert_text((72, 740), "Draft figures", fontsize=8)
        page.insert_text((280, 810), f"Page {number} of {pages}", fontsize=8)
    return bytes(doc.tobytes())


def pdf_with_table() -> bytes:
    """Page 1: a ruled 4x3 table; page 2: plain text."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 60), "Table below")
    for r in range(4):
        for c in range(3):
            rect = pymupdf.Rect(72 + c * 100, 80 + r * 20, 172 + c * 100, 100 + r * 20)
            page.draw_rect(rect, color=(0, 0, 0))
            page.insert_text((rect.x0 + 5, rect.y0 + 14), f"r{r}c{c}")
    doc.new_page().insert_text((72, 72), "CANARY-PLAIN page two")
    return bytes(doc.tobytes())


def pdf_with_merged_cells() -> bytes:
    """A ruled table: a header with an empty middle cell, a body row of one cell merged
    over the three columns (CANARY-MERGED), two plain rows, and a row of empty cells."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 60), "Table below")

    def cell(row: int, first: int, last: int, text: str) -> None:
        rect = pymupdf.Rect(72 + first * 100, 80 + row * 20, 172 + last * 100, 100 + row * 20)
        page.draw_rect(rect, color=(0, 0, 0))
        if text:
            page.insert_text((rect.x0 + 5, rect.y0 + 14), text)

    cell(0, 0, 0, "Item")
    cell(0, 1, 1, "")
    cell(0, 2, 2, "Total")
    cell(1, 0, 2, "CANARY-MERGED across the row")
    for row in (2, 3):
        for column in range(3):
            cell(row, column, column, f"r{row}c{column}")
    for column in range(3):
        cell(4, column, column, "")
    return bytes(doc.tobytes())


def encrypted_docx_bytes(password: str = "secret") -> bytes:
    """A password-protected DOCX, as Office saves one (an OLE file around the package)."""
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = io.BytesIO(docx_bytes("Locked", {"Secret": "CANARY-LOCKED"}))
    locked = io.BytesIO()
    OOXMLFile(plain).encrypt(password, locked)
    return locked.getvalue()


def cfb_bytes(tree: dict[str, Any], *, directory_apart: bool = False) -> bytes:
    """A compound file (MS-CFB version 3) of ``tree``: name -> bytes (a stream) or a
    dict (a storage), as rag_ingest writes one (parsers/compound.py).
    ``directory_apart``: the directory's sectors after the first moved to the file's end,
    as in a file whose directory grew after its streams were written."""
    import struct

    from rag_ingest.parsers.compound import compound_file

    data = bytearray(compound_file(tree))
    if not directory_apart:
        return bytes(data)
    fat_at = (struct.unpack_from("<I", data, 76)[0] + 1) * 512  # one FAT sector: small files
    fat = list(struct.unpack_from("<128I", data, fat_at))
    directory = [struct.unpack_from("<I", data, 48)[0]]
    while fat[directory[-1]] < 0xFFFFFFFA:
        directory.append(fat[directory[-1]])
    count = (len(data) - 512) // 512
    assert len(directory) > 1 and count + len(directory) <= 128, "a small tree, 5+ entries"
    moved = list(range(count + 1, count + len(directory)))  # past an unused sector
    data += bytes(512)
    for old in directory[1:]:
        data += data[(old + 1) * 512 : (old + 2) * 512]
        data[(old + 1) * 512 : (old + 2) * 512] = bytes(512)
        fat[old] = 0xFFFFFFFF
    for here, after in zip([directory[0], *moved], [*moved, 0xFFFFFFFE], strict=False):
        fat[here] = after
    fat[count] = 0xFFFFFFFF
    struct.pack_into("<128I", data, fat_at, *fat)
    return bytes(data)


def msg_bytes(subject: str, body: str | None, **fields: Any) -> bytes:
    """An Outlook .msg (MS-OXMSG) of :func:`msg_tree`'s fields, as a compound file."""
    return cfb_bytes(msg_tree(subject, body, **fields))


def msg_tree(
    subject: str,
    body: str | None,
    *,
    sender: tuple[str, str] = ("Ann Lee", "ann@example.com"),
    to: list[tuple[str, str]] | None = None,
    cc: list[tuple[str, str]] | None = None,
    bcc: list[tuple[str, str]] | None = None,
    sent: datetime.datetime | None = None,
    html: str | None = None,
    rtf: bytes | None = None,
    attachments: dict[str, bytes | tuple[bytes, str]] | None = None,
    forwarded: dict[str, object] | None = None,
    embedded: bool = False,
    string8: int = 0,
) -> dict[str, object]:
    """An Outlook message's storage: Unicode string properties (``string8``: in that code
    page, an older store's), an RTF body already compressed (``rtf``), recipients, a
    sent time in the property stream, attachments by value (bytes, or bytes and a MIME
    tag), and ``forwarded`` (another such tree) attached as an embedded message
    (``embedded``: this tree is one)."""
    import struct

    def text(prop: int, value: str) -> tuple[str, bytes]:
        if string8:
            return f"__substg1.0_{prop:04X}001E", value.encode(f"cp{string8}")
        return f"__substg1.0_{prop:04X}001F", value.encode("utf-16-le")

    def properties(header: int, values: dict[int, bytes]) -> bytes:
        rows = b"".join(struct.pack("<II", tag, 0x6) + value.ljust(8, b"\0")
                        for tag, value in values.items())  # fmt: skip
        return bytes(header) + rows

    # The subject with a terminating NUL, as some writers leave one.
    tree: dict[str, object] = dict([text(0x0037, subject + "\0"), text(0x0C1A, sender[0]),
                                    text(0x5D01, sender[1])])  # fmt: skip
    if body is not None:
        tree.update([text(0x1000, body)])
    if html is not None:
        tree["__substg1.0_10130102"] = html.encode("utf-8")
    if rtf is not None:  # PidTagRtfCompressed: as compressed (MS-OXRTFCP)
        tree["__substg1.0_10090102"] = rtf
    fixed = {0x3FDE0003: struct.pack("<I", string8 or 65001)}
    if sent is not None:
        ticks = int((sent - datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC))
                    .total_seconds() * 10_000_000)  # fmt: skip
        fixed[0x00390040] = struct.pack("<Q", ticks)
    tree["__properties_version1.0"] = properties(24 if embedded else 32, fixed)
    people = [(1, p) for p in to or []] + [(2, p) for p in cc or []] + [(3, p) for p in bcc or []]
    for i, (kind, (name, address)) in enumerate(people):
        tree[f"__recip_version1.0_#{i:08X}"] = dict(
            [text(0x3001, name), text(0x39FE, address),
             ("__properties_version1.0", properties(8, {0x0C150003: struct.pack("<I", kind)}))]
        )  # fmt: skip
    for i, (name, value) in enumerate((attachments or {}).items()):
        data, mime = value if isinstance(value, tuple) else (value, None)
        tree[f"__attach_version1.0_#{i:08X}"] = dict(
            [text(0x3707, name), ("__substg1.0_37010102", data),
             ("__properties_version1.0", properties(8, {0x37050003: struct.pack("<I", 1)}))]
            + ([text(0x370E, mime)] if mime else [])
        )  # fmt: skip
    if forwarded is not None:
        tree[f"__attach_version1.0_#{len(attachments or {}):08X}"] = {
            "__substg1.0_3701000D": forwarded,
            "__properties_version1.0": properties(8, {0x37050003: struct.pack("<I", 5)}),
        }
    return tree


# A blog page's text (blog_page), in tests of what of a page is its chrome.
BLOG_ARTICLE = [
    "Night trains are back on the timetables of Europe, and the sleeper from Vienna to "
    "Paris now runs three times a week through the winter months.",
    "The operator says that bookings doubled in the last year, with most travellers "
    "choosing a couchette rather than a private cabin with its own shower.",
    "CANARY-ARTICLE the carriages were refurbished in a workshop near Graz, where old "
    "seats were replaced by beds that fold away during the day.",
    "Travellers who board in the evening wake up in another country, which saves a night "
    "in a hotel and the long queues at the airport security gates.",
]
BLOG_COMMENT = (
    "CANARY-COMMENT I took the sleeper to Paris last month and the breakfast served at "
    "dawn somewhere in Lorraine was the best part of the trip."
)


def blog_page() -> str:
    """A blog's page: BLOG_ARTICLE's paragraphs, a table and BLOG_COMMENT amid chrome in
    plain <div>s that no markup marks (a menu, a logo, share buttons, related posts, a
    comment form, a footer)."""
    paragraphs = "".join(f"<p>{p}</p>" for p in BLOG_ARTICLE)
    soft = BLOG_ARTICLE[1].replace("bookings", "book\u00adings")
    return f"""<!DOCTYPE html><html><head><title>Night trains | The Rail Blog</title></head>
<body><div class="top"><a href="/">The Rail Blog</a>
<img src="logo.png" alt="Rail Blog crest in blue"> <a href="/news">Latest news</a>
<a href="/about">About our editors</a> <a href="/shop">Shop for gifts</a></div>
<div class="wrap"><div class="post"><h1>Night trains return to Europe</h1>{paragraphs}
<h2>Fares this winter</h2><table><tr><th>Route</th><th>Price</th></tr>
<tr><td>Vienna to Paris</td><td>59 euros</td></tr><tr><td>Munich to Rome</td><td>49 euros</td></tr>
</table><p>Once more: {soft}</p></div>
<div class="share">Share this post on Facebook, Twitter or by email</div>
<div class="more-posts"><h3>More posts you may like</h3><ul>
<li><a href="/a">Ten tips for packing light on long train journeys</a></li>
<li><a href="/b">Why the ferry to Sweden is cheaper in spring</a></li></ul></div>
<div id="comments" class="comments"><h3>2 comments</h3><ol class="commentlist">
<li class="comment"><p>{BLOG_COMMENT}</p></li></ol></div>
<div id="respond"><h3>Leave a Reply</h3><form><p>Your email address will not be published.
Required fields are marked</p><label>Name</label><input name="n"></form></div></div>
<div class="footer">Copyright 2024 The Rail Blog. All rights reserved. Imprint.</div>
</body></html>"""
