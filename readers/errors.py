"""The error tree of the ``readers`` package; each class names something a caller can act on.

Staff sentences are Vietnamese first; messages never contain card data (MRZ, names, numbers).
"""

from __future__ import annotations


class ReaderError(Exception):
    code = "reader_error"
    vi = "Không đọc được thẻ. Vui lòng đặt lại thẻ lên đầu đọc."
    en = "The card could not be read. Place it on the reader again."

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.en)
        self.detail = detail or self.en


class TlvError(ReaderError):
    """Truncated, oversized or malformed BER-TLV from the card."""

    code = "chip_data_format"
    vi = "Dữ liệu trong chip không đúng định dạng. Dùng QR hoặc nhập tay."
    en = "The chip's data is malformed. Use the QR code or type the numbers."


class ApduError(ReaderError):
    """The card answered a status word other than success."""

    code = "chip_status"

    def __init__(self, sw: int, detail: str = "", data: bytes = b"") -> None:
        super().__init__(detail or f"card answered SW {sw:04X}")
        self.sw = sw
        self.data = data


class AccessDenied(ReaderError):
    """BAC/PACE refused: the access key (MRZ data or CAN) is wrong (6300)."""

    code = "chip_access_denied"
    vi = "Chip từ chối khóa truy cập. Kiểm tra ngày sinh, ngày hết hạn hoặc nhập dòng MRZ."
    en = "The chip refused the access key. Check the dates or type the MRZ line."


class SecureMessagingError(ReaderError):
    """A protected answer failed its MAC or lacked a required data object."""

    code = "chip_secure_messaging"
    vi = "Kết nối bảo mật với chip bị lỗi. Đặt lại thẻ và giữ yên."
    en = "The secure channel to the chip failed. Place the card again and hold it still."


class CardRemoved(ReaderError):
    """The card left the field (or pcscd restarted) in the middle of a read."""

    code = "chip_card_removed"
    vi = "Thẻ bị nhấc ra khi đang đọc. Đặt lại thẻ và giữ yên cho đến khi đọc xong."
    en = "The card was moved during the read. Place it again and hold it still."


class NoReader(ReaderError):
    code = "chip_no_reader"
    vi = "Không thấy đầu đọc thẻ chip. Kiểm tra cáp USB và dịch vụ pcscd."
    en = "No chip reader found. Check the USB cable and the pcscd service."


class NoCard(ReaderError):
    code = "chip_no_card"
    vi = "Chưa có thẻ trên đầu đọc. Đặt thẻ CCCD lên đầu đọc."
    en = "No card on the reader. Place the CCCD on the reader."


class NoActiveAuth(ReaderError):
    """The card read last offers no Active Authentication (no DG15): no challenge to sign."""

    code = "chip_no_aa"
    vi = "Thẻ này không có xác thực chủ động (Active Authentication): không ký được mã thử."
    en = "This card has no Active Authentication: there is nothing to sign the challenge with."


class ActiveAuthFailed(ReaderError):
    """The card read last failed Active Authentication, or its answer to an HIS's challenge
    does not verify against the DG15 of that read: no signature is handed on."""

    code = "chip_aa_failed"
    vi = ("Thẻ không chứng minh được khoá của chip (có thể là BẢN SAO): không gửi chữ ký. "
          "Kiểm tra giấy tờ bằng mắt.")
    en = ("The card could not prove its chip's key (it may be a COPY): no signature sent. "
          "Check the document by eye.")


class CardSwapped(ReaderError):
    """After a tear, another card came back: nothing of the two is mixed."""

    code = "chip_card_swapped"
    vi = "Một thẻ khác được đặt lên giữa lúc đọc. Đặt lại đúng thẻ của người bệnh để đọc lại."
    en = "A different card was placed during the read. Place the patient's own card to read again."


class MrzError(ReaderError):
    code = "mrz_format"
    vi = "Dữ liệu MRZ không hợp lệ (sai số kiểm tra). Kiểm tra lại dòng MRZ."
    en = "The MRZ data is invalid (check digit). Check the MRZ line."


class AccessKeyFormatError(MrzError):
    """A chip key typed or sent in a shape no card has (before any reader is asked). The
    code stays ``mrz_format`` (what the chip route has always answered); the sentence is
    the right one — "check digit" was said for a 2-digit CAN."""

    code = "mrz_format"
    vi = ("Khoá mở chip không hợp lệ: CAN gồm 6 chữ số; ngày sinh và ngày hết hạn theo dạng "
          "YYMMDD (năm, tháng, ngày).")
    en = ("The chip key is not valid: the CAN is 6 digits; the dates of birth and expiry are "
          "YYMMDD (year, month, day).")


class PassiveAuthError(ReaderError):
    """Passive authentication could not run (malformed SOD or certificate)."""

    code = "passive_auth"
    vi = "Không kiểm tra được chữ ký số của chip. Không coi là thẻ xác thực."
    en = "The chip's signature could not be checked. Do not treat the card as authentic."


class OcrUnavailable(ReaderError):
    """The OCR engine or its Vietnamese/English language data is not installed."""

    code = "ocr_unavailable"
    vi = "Chưa cài bộ đọc chữ (tesseract-ocr, tesseract-ocr-vie). Báo bộ phận IT."
    en = "The OCR engine (tesseract-ocr, tesseract-ocr-vie) is not installed. Call IT."
