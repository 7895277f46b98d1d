"""The fixed test day and the QR examples every layer is tried with.

The day used for card validity is fixed so results do not depend on when the suite runs.
"""

from __future__ import annotations

from datetime import date, datetime, time

from verify.model import VN_TZ

TODAY = date(2026, 3, 16)
NOW = datetime.combine(TODAY, time(9, 30), tzinfo=VN_TZ)

CCCD_EXAMPLE = "001098012345||NGUYỄN VĂN B|01012000|Nữ|Hà Nội|01012022"
BHYT_OLD_EXAMPLE = (
    "DN479GA78900007|C4906FC3A06E205068C6B0C6A16E67204E6869|15/09/1993|2|"
    "3231332F31204E677579E1BB856E2056C4836E2043E1BBAB202D2070332D205135|79 - 012|01/09/2016|"
    "31/12/2016|16/09/2016|791900565855|-|4|-|27ee82624a6f2342-0101|$"
)
BHYT_NEW_EXAMPLE = (
    "0111077012|4e677579e1bb856e205469e1babf6e20c490e1baa174|29/03/1988|1|-|01 - C54|"
    "01/07/2023|-|31/07/2023|01050111077012|-|4| 01/10/2027|4641c59ff02659c3-1202|4|"
    "5175e1baad6e2043e1baa775204769e1baa5792c205468c3a06e68207068e1bb912048c3a0204ee1bb9969|$"
)

# Every result code of DOMAIN.md §5.
DOMAIN_CODES = ["000", "001", "002", "003", "004", "010", "050", "051", "052", "053", "054",
                "055", "060", "061", "070", "080", "090", "100", "101", "110", "120", "121",
                "122", "123", "124", "130", "205", "401", "500"]
