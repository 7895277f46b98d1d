"""The error tree of the ``verify`` package: each class names something a caller can act on.

Every error carries a short staff sentence in Vietnamese and English. Messages never contain
the personal data that caused them (names, ID numbers, card codes, raw QR text).
"""

from __future__ import annotations


class VerifyError(Exception):
    """Root of the package: the input or the registry did not allow a decision."""

    code = "verify_error"
    vi = "Không xử lý được dữ liệu. Vui lòng thử lại."
    en = "The data could not be processed. Please try again."

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.en)
        self.detail = detail or self.en


class InputFormatError(VerifyError):
    """Presented data has the wrong shape (QR text, card code, ID number, date)."""

    code = "input_format"
    vi = "Dữ liệu không đúng định dạng. Vui lòng quét lại hoặc nhập tay."
    en = "The data has the wrong format. Scan again or type it in."


class QrFormatError(InputFormatError):
    code = "qr_format"
    vi = "Mã QR không đọc được hoặc không phải QR CCCD/BHYT. Vui lòng quét lại hoặc nhập tay."
    en = "The QR code is unreadable or not a CCCD/BHYT code. Scan again or type the numbers."


class CardCodeError(InputFormatError):
    code = "card_code_format"
    vi = "Mã thẻ BHYT không đúng định dạng (10, 12 hoặc 15 ký tự). Vui lòng kiểm tra lại."
    en = "The BHYT card code has the wrong shape (10, 12 or 15 characters). Check it again."


class IdNumberError(InputFormatError):
    code = "id_number_format"
    vi = "Số CCCD phải gồm đúng 12 chữ số. Vui lòng kiểm tra lại."
    en = "The CCCD number must be exactly 12 digits. Check it again."


class DateFormatError(InputFormatError):
    code = "date_format"
    vi = "Ngày không hợp lệ. Nhập theo dạng ngày/tháng/năm, ví dụ 01/01/1990."
    en = "Invalid date. Use day/month/year, for example 01/01/1990."


class MixedInputError(InputFormatError):
    """A QR and typed fields in one request: which one the desk meant is not known, and a
    name typed beside a QR would otherwise be dropped without a word."""

    code = "mixed_input"
    vi = "Chỉ gửi mã QR hoặc các ô nhập tay (mã thẻ, họ tên, ngày sinh), không gửi cả hai."
    en = "Send either the QR or the typed fields (code, name, date of birth), not both."


class MissingFieldError(InputFormatError):
    code = "missing_field"
    vi = "Thiếu họ tên hoặc ngày sinh: cổng BHXH cần cả hai để tra cứu."
    en = "Name or date of birth missing: the registry needs both for a lookup."


class MissingNumberError(MissingFieldError):
    """Neither a card code nor an ID number was given (same code, its own sentence)."""

    vi = "Thiếu mã thẻ BHYT hoặc số CCCD. Vui lòng nhập một trong hai."
    en = "No BHYT card code or CCCD number given. Type one of them."


class FieldTooLongError(InputFormatError):
    code = "field_too_long"
    vi = "Dữ liệu nhập quá dài. Vui lòng kiểm tra lại."
    en = "A typed field is too long. Check it again."


class HisRequestError(InputFormatError):
    """An HIS feed request (HN212 ``/input_data``, ``/get_aa``) that is not what the protocol
    says."""

    code = "his_request"
    vi = ("Yêu cầu từ HIS không đúng dạng: cần số CCCD 12 chữ số, ngày sinh và ngày hết hạn "
          "dạng ddmmyyyy, hoặc mã thử thách 8 byte (base64).")
    en = ("The HIS request is malformed: it needs the 12-digit ID, birth and expiry dates as "
          "ddmmyyyy, or an 8-byte challenge in base64.")


class TableError(VerifyError):
    """A data table (benefit rules, result codes, provinces) is missing or invalid: the
    detail names the file and the entry."""

    code = "table_error"
    vi = "Bảng dữ liệu của máy bị thiếu hoặc sai (xem chi tiết). Báo bộ phận CNTT."
    en = "A data table of the terminal is missing or invalid (see the detail). Tell IT."


class RegistryError(VerifyError):
    """The registry could not give an answer."""

    code = "registry_error"
    vi = "Không tra cứu được cổng BHXH. Kiểm tra thẻ bản giấy/ứng dụng và thử lại sau."
    en = "The insurance registry could not be reached. Check the card itself and retry later."


class RegistryUnavailable(RegistryError):
    """Timeout, refused connection, reset, or an HTTP server error."""

    code = "registry_unavailable"


class RegistryProtocolError(RegistryError):
    """The registry answered something that is not its protocol (non-JSON, wrong shape)."""

    code = "registry_protocol"
    vi = "Cổng BHXH trả lời không đúng định dạng. Kiểm tra thẻ bản giấy/ứng dụng và thử lại sau."
    en = "The registry sent an unreadable answer. Check the card itself and retry later."


class RegistryAuthError(RegistryError):
    """Login refused: the facility account or password is wrong."""

    code = "registry_auth"
    vi = "Tài khoản cổng BHXH của cơ sở bị từ chối. Báo bộ phận CNTT kiểm tra cấu hình."
    en = "The facility's registry account was refused. Ask IT to check the configuration."
