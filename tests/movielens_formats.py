"""A few hand-written lines in each MovieLens file format, for the loader's tests.

Each entry of ``FORMATS`` is a data set name -> {file name: bytes}, laid out exactly as GroupLens ships that data
set (separators, header or not, line endings, encodings, quoting), with the quirks a reader must survive: Latin-1
titles in ml-100k and ml-1m, a UTF-8 title and a quoted title with a comma in the CSVs, a tag that reads "NA",
ml-100k's item 267 with empty dates, u.genre's trailing blank line. ``EXPECTED`` holds what the loader must make
of them. They are far smaller than the official files, so they load with ``strict=False`` only.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

GENRES_100K = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
               "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
               "Western"]


def u_item_line(item: int, title: str, date: str, url: str, genres: list[str]) -> str:
    return f"{item}|{title}|{date}||{url}|" + "|".join("1" if g in genres else "0" for g in GENRES_100K) + "\n"


CSV_LAYOUT = {  # ml-latest-small and ml-25m: UTF-8, a header row, CRLF
    "ratings.csv": ("userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,11,0.5,964981247\r\n"
                    "2,4973,5.0,1445714835\r\n3,1,2.5,1306463578\r\n").encode(),
    "movies.csv": ("movieId,title,genres\r\n1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\r\n"
                   "11,\"American President, The (1995)\",Comedy|Drama|Romance\r\n"
                   "4973,\"Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)\",Comedy|Romance\r\n"
                   "40697,Babylon 5,(no genres listed)\r\n").encode(),
    "tags.csv": "userId,movieId,tag,timestamp\r\n2,4973,NA,1445714994\r\n3,1,\"pixar, funny\",1306463600\r\n".encode(),
    "links.csv": "movieId,imdbId,tmdbId\r\n1,0114709,862\r\n11,0112346,9087\r\n4973,0211915,194\r\n40697,0105946,\r\n"
                 .encode(),
    "README.txt": b"Hand-written lines in the format of ml-latest-small.\n",
}

FORMATS: dict[str, dict[str, bytes]] = {
    "ml-latest-small": CSV_LAYOUT,
    "ml-25m": CSV_LAYOUT,
    "ml-100k": {  # u.data tab-separated; the rest "|"-separated Latin-1; LF
        "u.data": b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t267\t5\t881251000\n",
        "u.item": (u_item_line(242, "Kolya (1996)", "24-Jan-1997", "http://us.imdb.com/M/title-exact?Kolya%20(1996)",
                               ["Comedy"])
                   + u_item_line(267, "unknown", "", "", ["unknown"])
                   + u_item_line(302, "L.A. Confidential (1997)", "01-Jan-1997",
                                 "http://us.imdb.com/M/title-exact?L%2EA%2E+Confidential+(1997)",
                                 ["Crime", "Film-Noir", "Mystery", "Thriller"])
                   + u_item_line(377, "Heavyweights (1994)", "01-Jan-1994",
                                 "http://us.imdb.com/M/title-exact?Heavyweights%20(1994)", ["Children's", "Comedy"])
                   + u_item_line(1500, "Misérables, Les (1995)", "01-Jan-1995", "", ["Drama", "Musical"])
                   ).encode("latin-1"),
        "u.genre": "".join(f"{g}|{i}\n" for i, g in enumerate(GENRES_100K)).encode("latin-1") + b"\n",
        "u.user": b"22|25|M|writer|40206\n186|39|F|executive|00000\n196|49|M|writer|55105\n",
    },
    "ml-1m": {  # "::"-separated, movies.dat Latin-1, LF
        "ratings.dat": b"1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n2::73::1::978299000\n",
        "movies.dat": ("73::Misérables, Les (1995)::Drama|Musical\n"
                       "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
                       "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n").encode("latin-1"),
        "users.dat": b"1::F::1::10::48067\n2::M::56::16::70072\n",
    },
}

_CSV_EXPECTED = {
    "ratings": [(1, 1, 4.0, 964982703), (1, 11, 0.5, 964981247), (2, 4973, 5.0, 1445714835), (3, 1, 2.5, 1306463578)],
    "items": [(1, "Toy Story (1995)", 1995, ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]),
              (11, "American President, The (1995)", 1995, ["Comedy", "Drama", "Romance"]),
              (4973, "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)", 2001, ["Comedy", "Romance"]),
              (40697, "Babylon 5", None, [])],
    "tags": [(2, 4973, "NA", 1445714994), (3, 1, "pixar, funny", 1306463600)],
}

EXPECTED = {  # rows of the frames the loader returns (year None where missing)
    "ml-latest-small": _CSV_EXPECTED,
    "ml-25m": _CSV_EXPECTED,
    "ml-100k": {
        "ratings": [(196, 242, 3.0, 881250949), (186, 302, 3.0, 891717742), (22, 377, 1.0, 878887116),
                    (196, 267, 5.0, 881251000)],
        "items": [(242, "Kolya (1996)", 1996, ["Comedy"]), (267, "unknown", None, []),
                  (302, "L.A. Confidential (1997)", 1997, ["Crime", "Film-Noir", "Mystery", "Thriller"]),
                  (377, "Heavyweights (1994)", 1994, ["Children's", "Comedy"]),
                  (1500, "Misérables, Les (1995)", 1995, ["Drama", "Musical"])],
        "tags": [],
    },
    "ml-1m": {
        "ratings": [(1, 1193, 5.0, 978300760), (1, 661, 3.0, 978302109), (2, 1193, 4.0, 978298413),
                    (2, 73, 1.0, 978299000)],
        "items": [(73, "Misérables, Les (1995)", 1995, ["Drama", "Musical"]),
                  (661, "James and the Giant Peach (1996)", 1996, ["Animation", "Children's", "Musical"]),
                  (1193, "One Flew Over the Cuckoo's Nest (1975)", 1975, ["Drama"])],
        "tags": [],
    },
}


def write_format(root: Path, name: str, files: dict[str, bytes] | None = None) -> Path:
    """Write ``files`` (default: ``FORMATS[name]``) into ``root/name/`` and return that folder."""
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    for fname, content in (FORMATS[name] if files is None else files).items():
        (folder / fname).write_bytes(content)
    return folder


def rows(frame) -> list[tuple]:
    """A frame's rows as plain Python values (None for a missing year), to compare with ``EXPECTED``."""
    def plain(v):
        if isinstance(v, (list, str)):
            return v
        return None if pd.isna(v) else v.item() if hasattr(v, "item") else v

    return [tuple(plain(v) for v in row) for row in frame.astype(object).itertuples(index=False)]
