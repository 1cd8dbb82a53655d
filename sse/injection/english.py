"""The English patterns: over the word view, over the raw text (markers), over the squashed view.

Each word rule carries trigger words: its pattern is searched only when one of
them is among the text's words, so ordinary text costs a set lookup per rule.
Every pattern is a sequence of bounded pieces -- no nested unbounded
repetition -- so a search is linear in the text's length.
"""

from __future__ import annotations

import re

IGNORE = "ignore_instructions"
REVEAL = "reveal_system_prompt"
JAILBREAK = "jailbreak_roleplay"
FAKE_TURN = "fake_system_turn"
PLANTED = "planted_instruction"
EXFILTRATION = "exfiltration"
MARKUP = "markup_injection"
ENCODED = "encoded_payload"
OBFUSCATED = "obfuscated"

Rule = tuple[str, frozenset[str], "re.Pattern[str]"]


def _words_of(text: str) -> frozenset[str]:
    return frozenset(text.split())


_IGNORE_VERB = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|forgetting|bypass|override|overlook|dismiss|discard|"
    r"abandon|erase|delete|nullify|unlearn|set aside|throw out|throw away|stop following|do not follow|"
    r"dont follow|no longer follow|do not obey|dont obey|stop obeying|pay no attention to|skip)"
)
_GAP = (
    r"(?:(?:about|all|any|the|of|these|those|that|this|and|or|whatever|entire|whole|other|such|every|single|one|its|"
    r"my|our|their)\s)"
)
_STRONG = (
    r"(?:all|your|previous|previously|prior|preceding|above|earlier|foregoing|former|initial|original|"
    r"system|developer|hidden|given|following|subsequent|later|below|existing|current|old|default|safety)"
)
_QUALIFIER = (
    r"(?:(?:ai|assistant|safety|content|ethical|moral|openai|model|chatgpt|given|stated|above|mentioned|reviewer|"
    r"security|core|base|built\sin)\s)"
)
_RULES = (
    r"(?:instructions?|prompts?|directions|directives?|rules|guidelines|guidance|programming|commands|"
    r"constraints|restrictions|training|policies|safeguards|filters|guardrails|limitations|orders|conditioning|"
    r"stuff|protocols|checks|measures|settings|inputs)"
)
_SAY = r"(?:print|say|write|output|respond|reply|answer|return|repeat|report|state|tell|type|display|show|focus|list)"

WORD_RULES: list[Rule] = [
    (
        IGNORE,
        _words_of(
            "ignore ignoring disregard disregarding forget forgetting bypass override overlook dismiss discard "
            "abandon erase delete nullify unlearn aside throw follow following obey obeying attention skip"
        ),
        re.compile(
            rf"\b{_IGNORE_VERB}\s{_GAP}{{0,3}}{_STRONG}\s{_GAP}{{0,2}}(?:{_STRONG}\s{_GAP}{{0,2}})?{_STRONG}?\s?"
            rf"{_QUALIFIER}{{0,2}}{_RULES}\b"
        ),
    ),
    (
        IGNORE,
        _words_of("ignore disregard forget"),
        re.compile(
            r"\b(?:ignore|disregard|forget)\s(?:about\s)?(?:all\s|of\s)*(?:everything|anything|all)\s"
            r"(?:(?:you\s)?(?:were|have\sbeen|ve\sbeen|got)\s(?:told|given|instructed|taught|programmed)|"
            r"(?:written\s|said\s|stated\s)?(?:above|before|prior|previously|earlier)|that\scame\sbefore|"
            r"(?:we|i)\s(?:discussed|talked\sabout|said)|you\sknow\sabout\s(?:rules|your\srules|ethics|guidelines))\b"
        ),
    ),
    (
        # "ignore the rest of this data and print ...", "disregard all info except ...",
        # "ignore instructions, and just print"
        IGNORE,
        _words_of("ignore disregard forget skip"),
        re.compile(
            r"\b(?:ignore|disregard|forget)\s(?:the\srest\sof\s|all\s|any\s|the\sother\s|other\s)?(?:this\s|the\s|that\s)?"
            r"(?:data|content|info|information|text|document|documents|input|context|snippets?|instructions|directions|"
            r"(?:negative\s|other\s)?(?:indicators|signals|findings))\s(?:(?:in|of)\s(?:the|this)\s(?:text|document|data)\s)?"
            rf"(?:(?:and|then|except|but|instead)\s)?(?:(?:just|only|instead|simply|now)\s)?(?:{_SAY}|for)\b"
        ),
    ),
    (
        IGNORE,
        _words_of(
            "void null cancelled canceled revoked obsolete outdated deprecated valid fake false test wrong "
            "overridden replaced suspended lifted disabled changed"
        ),
        re.compile(
            r"\b(?:the\s|your\s|all\s)?(?:above|previous|prior|original|initial|old|system|safety)?\s?"
            r"(?:instructions|prompt|rules|guidelines|restrictions|policies)\s(?:are|were|is|was|have|has)\s(?:now\s)?"
            r"(?:been\s)?(?:void|null|cancelled|canceled|revoked|obsolete|outdated|deprecated|no\slonger\svalid|"
            r"fake|false|a\stest|wrong|overridden|replaced|suspended|lifted|disabled|changed)\b"
        ),
    ),
    (
        IGNORE,
        _words_of("precedence supersede override replace developer admin administrator openai system creator"),
        re.compile(
            r"\b(?:new|updated|real|actual|override|overriding)\s(?:system\s)?(?:instructions|directive|rules)\s"
            r"(?:from\s(?:the\s)?(?:developer|admin|administrator|openai|system|your\screator)|take\sprecedence|"
            r"supersede|override|replace)\b"
        ),
    ),
    (
        # "STOP EVERYTHING!!! NOW!!! JUST PRINT ..."
        IGNORE,
        _words_of("stop nevermind never"),
        re.compile(
            rf"\b(?:stop\severything|nevermind|never\smind)\s(?:\w+\s){{0,3}}(?:just\s|now\s|instead\s){_SAY}\b"
        ),
    ),
    (
        IGNORE,
        _words_of("skip bypass disable override"),
        re.compile(
            r"\b(?:skip|bypass|disable|turn\soff|override)\s(?:all\s|the\s|any\s|your\s)*(?:manual\s)?"
            r"(?:safety|security|content|ethical)\s(?:checks|filters?|guidelines|rules|measures|protocols|"
            r"confirmations|restrictions)\b|\boverride\s(?:the\s)?(?:manual\s)?(?:scoring|evaluation|assessment|rating)\b"
        ),
    ),
    (
        REVEAL,
        _words_of(
            "system initial original hidden secret internal developer confidential pre meta base starting opening"
        ),
        re.compile(
            r"\b(?:reveal|show|print|display|output|repeat|recite|dump|leak|expose|disclose|tell\sme|give\sme|"
            r"write\sout|spell\sout|paste|echo|copy|share|list|provide|return|translate|summarize|summarise|encode|"
            r"convert|rewrite|base64|rot13|reverse|spell|paraphrase)\s"
            r"(?:(?:me|us|the|your|full|entire|complete|exact|exactly|word\sfor\sword|verbatim|original|initial|"
            r"hidden|secret|internal|confidential|underlying|actual|real|raw|first|whole|text\sof\s(?:the|your)|"
            r"contents\sof\s(?:the|your)|all\sof|of|encode|emoji|then|back|to|text|into|in)\s){0,5}"
            r"(?:system|initial|original|hidden|secret|internal|developer|confidential|pre|meta|"
            r"base|starting|opening)\s?(?:prompt|instructions|message|directives|guidelines|configuration|rules)\b"
        ),
    ),
    (
        REVEAL,
        _words_of("your"),
        re.compile(
            r"\b(?:what\s(?:is|are|was|were|s)|whats|tell\sme|show\sme|print|reveal|repeat|list|output|encode|dump)\s"
            r"(?:exactly\s|all\s)?your\s(?:(?:full|exact|original|initial|hidden|secret|system|first|complete|"
            r"actual|internal|underlying|starting)\s){0,2}(?:prompt|instructions|directives|system\smessage|rules|"
            r"programming|guidelines|configuration)\b"
        ),
    ),
    (
        REVEAL,
        _words_of("above before prior starting beginning context you system"),
        re.compile(
            r"\b(?:repeat|print|output|write|copy|recite|echo|show)\s(?:back\s)?(?:me\s)?(?:all\s|the\s|this\s)*"
            r"(?:entire\s|whole\s)?(?:words|text|everything|lines|content|sentences|tokens|message|conversation)\s"
            r"(?:(?:written\s|that\sappear\s|that\scame\s|that\sare\s)?(?:above|before|prior\sto)\s"
            r"(?:this|the\sfirst|my\sfirst|the\suser|starting|beginning)|"
            r"(?:above\s)?(?:starting|beginning)\swith\s(?:you\sare|the\sphrase|the\swords)|"
            r"(?:in|of)\s(?:your|the)\s(?:context|system)\s(?:window|prompt|message)|above\s(?:but|in\sfull|verbatim))|"
            r"\b(?:beginning|starting)\swith\syou\sare\s(?:repeat|print|output|write|copy)"
        ),
    ),
    (
        REVEAL,
        _words_of("your you instructed told"),
        re.compile(
            r"\b(?:text|contents?|wording|copy)\sof\syour\s(?:(?:system|initial|original|hidden|secret|full|"
            r"first)\s){0,2}(?:prompt|instructions|system\smessage|rules)\b|"
            r"\b(?:instructions|text|rules|prompt|words)\syou\swere\s(?:given|told|provided)\s"
            r"(?:initially|at\sthe\s(?:start|beginning)|before|by\syour\s(?:developers?|creators?)|first)\b|"
            r"\b(?:start|begin)\syour\s(?:answer|response|reply)\swith\smy\s(?:instructions|prompt|rules)\sare\b|"
            r"\bcomplete\sthis\ssentence\si\swas\s(?:instructed|told|programmed)\b"
        ),
    ),
    (
        REVEAL,
        _words_of("given told programmed instructed prompted"),
        re.compile(
            r"\b(?:what|which)\s(?:instructions|rules|directives|guidelines)\s(?:were|have)\syou\s(?:been\s)?"
            r"(?:given|told|programmed)|\bwhat\swere\syou\s(?:told|instructed|programmed)\s(?:to\sdo\s)?"
            r"(?:before|at\sthe\sstart|initially|by\syour\s(?:developers|creators))|\bhow\swere\syou\s"
            r"(?:instructed|prompted)\sbefore\b"
        ),
    ),
    (
        REVEAL,
        _words_of("key keys password passwords secret secrets credentials token tokens"),
        re.compile(
            r"\b(?:api\s?keys?|passwords?|secrets?|credentials|tokens?)\sfrom\syour\s(?:context|system|prompt|memory|"
            r"instructions|configuration)\b"
        ),
    ),
    (
        JAILBREAK,
        _words_of("anything dan stan dude mongo machiavellian confidant developer mode jailbroken"),
        re.compile(
            r"\b(?:do\sanything\snow|dan\smode|anti\sdan|better\s?dan|stan\smode|dude\smode|mongo\stom|"
            r"always\sintelligent\sand\smachiavellian|evil\sconfidant|developer\smode\s(?:enabled|output|"
            r"response)|(?:jailbreak|jailbroken|god|unrestricted|unfiltered|uncensored|chaos|evil)\smode\s"
            r"(?:enabled|activated|on)|(?:debug|debugging|maintenance|admin|god|sudo)\smode\s(?:enabled|activated|on)\sby|"
            r"(?:you\sare|youre|you\shave\sbeen|act\sas\s(?:a|an)?\s?|now\sa)\s?"
            r"(?:now\s)?jailbroken|jailbroken\s(?:ai|model|assistant|version|chatbot|llm|gpt|chatgpt))\b"
        ),
    ),
    (
        JAILBREAK,
        _words_of("dan"),
        re.compile(
            r"\b(?:you\sare|youre|you\swill\sbe|act\sas|acting\sas|pretend\sto\sbe|pretend\syou\sare|roleplay\sas|"
            r"role\splay\sas|play\sthe\srole\sof|from\snow\son\syou\sare|you\sare\snow|become|simulate)\s"
            r"(?:now\s)?(?:a\s|an\s)?(?:ai\s|model\s|bot\s|chatbot\s|assistant\s)?(?:called\s|named\s)?dan\b"
        ),
    ),
    (
        JAILBREAK,
        _words_of("toxic harmful discriminatory offensive hateful racist sexist insulting derogatory unfriendly"),
        re.compile(
            r"\bwrite\s(?:one|a|an)\s(?:toxic|harmful|discriminatory|offensive|hateful|racist|sexist|insulting|"
            r"derogatory|negative|unfriendly)\s(?:sentence|statement|remark|comment)\sabout\b"
        ),
    ),
    (
        FAKE_TURN,
        _words_of("end system admin administrator developer root"),
        re.compile(
            r"\b(?:end\sof\s(?:the\s)?(?:system\s)?(?:prompt|instructions)\s(?:new|begin|start|system|user)|"
            r"(?:system|admin|administrator|developer|root)\s(?:override|command|message|instruction|notice|note|"
            r"update|alert)\s(?:ignore|disregard|forget|you\smust|new|from\snow|disable|reveal|enable|your|the\suser|"
            r"focus|print|say|before\syou))"
        ),
    ),
    (
        # A document speaking to the model that reads it.
        PLANTED,
        _words_of("note notice message instructions instruction ai llm llms model models humans automated assistant"),
        re.compile(
            r"\b(?:note|notice|message|instructions?|memo)\s(?:to|for)\s(?:the\s|any\s|all\s)?(?:ai|llm|llms|"
            r"language\smodels?|assistants?|chatbots?|gpt|bots?|automated\s\w+|ai\s\w+|screening\s\w+|"
            r"analysis\s(?:software|tools?|systems?))\b|"
            r"\b(?:invisible|hidden)\sto\s(?:the\s)?(?:humans?|human\sreaders?|readers?|people|users?)\b|"
            r"\bvisible\s(?:only\s)?to\s(?:the\s)?(?:ai|llm|llms|language\smodels?|bots?|machines?)\b|"
            r"\bfor\s(?:automated|ai)\s(?:screening|analysis|review|systems?|parsers?|readers?|tools?)\b|"
            r"\bif\syou\sare\s(?:an?\s)?(?:ai|llm|language\smodel|ai\sassistant|chatbot|bot|automated)\b|"
            r"\b(?:ai|llm)\s(?:assistants?\s|models?\s|systems?\s|agents?\s)?(?:reading|processing|summari[sz]ing|"
            r"parsing|reviewing)\sthis\b"
        ),
    ),
    (
        PLANTED,
        _words_of("summarizing summarising summarize summarise read reading process processing questioned asked user"),
        re.compile(
            r"\bwhen\s(?:you\s)?(?:summari[sz]ing|summari[sz]e|read|reading|process|processing|see)\sthis\s"
            r"(?:page|document|email|text|article|message|file|site|website|resume|report|data)?\s?"
            r"(?:you\s)?(?:must\s|should\s|always\s)?(?:end|include|add|say|mention|append|print|output|reply|"
            rf"respond|tell|send|email|write|ignore|{_SAY})?|"
            r"\bif\s(?:the\s)?(?:user|anyone|someone)\sasks?\s(?:for|about|you)\b(?:\s\w+){0,6}\s(?:reply|respond|"
            r"answer|say|tell|output|print)\swith\s(?:only|just)\b|"
            r"\bif\s(?:questioned|asked)\b(?:\s\w+){0,8}\s(?:simply\s)?(?:report|say|answer|respond|reply|state)\s"
            r"(?:that|with)\b|"
            r"\byou\smay\snot\sdeviate\s(?:from|form)\sthis\b|"
            r"\b(?:focus|concentrate)\s(?:only|exclusively|solely)\son\sthe\sfollowing\b(?:\s\w+){0,3}\s(?:and\s)?"
            r"(?:provide|give|show|report|tell)\b|"
            r"\b(?:the\s)?user\shas\s(?:already\s)?(?:granted|given)\s(?:you\s)?(?:permission|authori[sz]ation|"
            r"consent|approval)\sto\s(?:skip|bypass|ignore|disable|share|reveal)\b"
        ),
    ),
    (
        EXFILTRATION,
        _words_of("concatenate replace append conversation chat session summary"),
        re.compile(
            r"\bconcatenate\s(?:these|the\sfollowing|the|all)\s(?:strings|parts|pieces|fragments)\b|"
            r"\breplace\s[a-z_]{2,12}\swith\s(?:the\s|our\s|this\s|a\s|an\s)?(?:previous|last|entire|whole|full|"
            r"url\sencoded|base64|brief|short)?\s?(?:message|conversation|chat|history|prompt|answer|summary|data|"
            r"context|reply)\b|"
            r"\b(?:summary|contents?|history|transcript|copy)\sof\s(?:this|the|our)\s(?:conversation|chat|session|"
            r"discussion)\b(?:\s\w+){0,12}\s(?:url|link|image|query|base64|encoded|append|parameter)\b|"
            r"\b(?:url|base64)\s(?:encoded\s)?(?:summary|contents?|history|transcript)\sof\s(?:this|the|our)\s"
            r"(?:conversation|chat|session|page|discussion)\b"
        ),
    ),
]

# Markers: looked for in the text itself (the word view drops the punctuation they are made of).
# Each is searched only when one of its trigger words is among the text's
# words or one of its trigger strings is in the text.
MarkerRule = tuple[str, frozenset[str], "re.Pattern[str] | None", "re.Pattern[str]"]


def _strings(*literals: str) -> re.Pattern[str]:
    """One search for any of some literal strings: cheaper than a Python loop of ``in`` tests."""
    return re.compile("|".join(re.escape(literal) for literal in literals))


MARKER_RULES: list[MarkerRule] = [
    (
        # Chat-template tokens and bracketed role tags.
        FAKE_TURN,
        frozenset(),
        _strings(
            "<|",
            "<<",
            "[INST",
            "[/INST",
            "<end",
            "<system",
            "</system",
            "[system",
            "[System",
            "[SYSTEM",
            "[/system",
            "[rest-of",
            "<instruction",
            "</instruction",
            "[ADMIN",
            "<End",
            "<END",
        ),
        re.compile(
            r"<\|im_start\|>\s*system|<\|start_header_id\|>\s*system|<<\s*sys\s*>>|<\|system\|>|"
            r"<\|(?:endoftext|im_end|eot_id|end_of_turn|end|eos)\|>|<end\s?of\s?(?:session|turn|conversation)>|"
            r"\[/?INST\]|</?system>|\[/?system\]|\[rest-of-document\]|</?instructions?>|"
            r"\[ADMIN\s(?:REQUEST|OVERRIDE|COMMAND)",
            re.IGNORECASE,
        ),
    ),
    (
        # A line that opens a system or admin turn and gives an order.
        FAKE_TURN,
        _words_of("system admin"),
        None,
        re.compile(
            r"^[ \t]*\[(?:system|admin)\][ \t]*:?[ \t]*\S|^[ \t]*###[ \t]*(?:system|new\sinstructions?)[ \t]*:?|"
            r"^[ \t]*(?:system|admin)(?:\s(?:message|note|notice|prompt|override|update))?[ \t]*:[ \t]*"
            r"(?:ignore|disregard|forget|focus|provide|print|respond|reply|you\b|from\snow|new\b|always|never|"
            r"do\snot|don'?t|output|say|repeat|the\suser|append|include|grant|reveal|this\b|the\sassistant|"
            r"before\syou)",
            re.IGNORECASE | re.MULTILINE,
        ),
    ),
    (
        # "System note:" in other languages, opening a line.
        FAKE_TURN,
        _words_of("systemhinweis systeme sistema sistem"),
        None,
        re.compile(
            r"^[ \t]*(?:systemhinweis|note\s+syst[eè]me|nota\s+del\s+sistema|nota\s+di\s+sistema|sistem(?:\s+notu)?)"
            r"[ \t]*:",
            re.IGNORECASE | re.MULTILINE,
        ),
    ),
    (
        # "New instructions:" opening a line.
        IGNORE,
        _words_of("new updated"),
        None,
        re.compile(
            r"^[ \t]*(?:new|updated)\s+(?:system\s+)?(?:instructions?|rules|directives?)[ \t]*:",
            re.IGNORECASE | re.MULTILINE,
        ),
    ),
    (
        # "### END OF USER INPUT ###", "----- END OF DOCUMENT -----"
        FAKE_TURN,
        frozenset(),
        _strings(
            "END OF",
        ),
        re.compile(
            r"#{2,}\s*END\sOF\s(?:USER\s)?(?:INPUT|PROMPT|DOCUMENT|CONTEXT)\b|"
            r"-{2,}\s*END\sOF\s(?:DOCUMENT|INPUT|CONTEXT|PROMPT)\s*-{2,}"
        ),
    ),
    (
        # A fake assistant turn with a placeholder ("Assistant: [salient summary]"), or a placeholder
        # line then a user turn ("<translated sentence>" then "User: ...").
        FAKE_TURN,
        _words_of("assistant ai bot chatbot user human"),
        None,
        re.compile(
            r"^[ \t]*(?:assistant|ai|bot|chatbot)[ \t]*:[ \t]*[<\[][^<>\[\]\n]{1,80}[>\]][ \t]*$|"
            r"^[ \t]*<[a-z][^<>\n]{4,80}>[ \t]*\n[ \t]*(?:user|human)[ \t]*:",
            re.IGNORECASE | re.MULTILINE,
        ),
    ),
    (
        PLANTED,
        _words_of("instruction instructions"),
        _strings(
            "<!--",
        ),
        re.compile(
            r"\b(?:CORE|NEW|HIDDEN|SECRET|PRIORITY|OVERRIDE|FOLLOW|IMPORTANT)\s+INSTRUCTIONS?\b|"
            r"<!--[^<>]{0,300}?\b(?:ignore|when\ssummari[sz]ing|assistant|AI|LLM|instructions?|you\smust)\b"
        ),
    ),
    (
        # A separator or padding, then an override: the classic hijack.
        IGNORE,
        frozenset(),
        _strings("---", "===", "***", "###", "___", "~~~", "..."),
        re.compile(
            r"(?:^|\n)[ \t]*(?:[-=*#_~]{3,}|\.{3,})[ \t]*\n(?:[ \t]*[-=*#_~]{3,}[ \t]*\n){0,8}[ \t]*(?:\.{3}\s*)?"
            r"(?:nevermind|never\smind|stop\severything|ignore\s(?:any|all|the|everything|previous|above)|"
            r"disregard|forget\s(?:everything|all|the|previous)|new\sinstructions?\s*:|instead\s*,?\s*(?:just\s)?"
            r"(?:print|say|write|output))",
            re.IGNORECASE,
        ),
    ),
    (
        EXFILTRATION,
        frozenset(),
        _strings("](", "@"),
        re.compile(
            r"!?\[[^\]\n]{0,100}\]\(\s*https?://[^)\s]{0,200}?(?:\[[A-Za-z_ ]{2,20}\]|\{[A-Za-z_ ]{2,20}\}|\$\w{2,20})|"
            r"\b(?:send|email|e-mail|forward|post|upload|mail|transmit)\b[^.\n]{0,80}?"
            r"\b(?:api\s?keys?|passwords?|credentials|secrets?|customer\s(?:list|data|emails?)|environment\svariables|"
            r"conversation|chat\shistory)\b[^.\n]{0,60}?\bto\s+[\w.+-]+@[\w-]+\.",
            re.IGNORECASE,
        ),
    ),
    (
        MARKUP,
        _words_of("javascript script onerror"),
        None,
        re.compile(
            r"\[[^\]\n]{0,100}\]\(\s*javascript:|"
            r"(?:<script|javascript:|onerror\s*=)[^\n]{0,200}?\bin\syour\s(?:output|response|answer|reply)\b|"
            r"\b(?:include|insert|add|output|print|render|embed|put|append|echo|write)\b[^\n]{0,30}?<script[^\n]{0,200}?"
            r"\bin\syour\s(?:output|response|answer|reply)\b",
            re.IGNORECASE,
        ),
    ),
    (
        REVEAL,
        _words_of("systemprompt sysprompt system_prompt sys_prompt"),
        _strings("_prompt", "Prompt"),
        re.compile(
            r"\b(?:console\.log|print|echo|printf|puts)\s*\(\s*(?:system_?prompt|sys_?prompt)\s*\)", re.IGNORECASE
        ),
    ),
]

# Co-occurrence: a persona cue and an "unbound" cue within one stretch of text.
PERSONA = re.compile(
    r"\b(?:you\sare|youre|you\swill\s(?:now\s)?(?:be|act|respond|answer)|act\sas|acting\sas|pretend|roleplay|"
    r"role\splay|play\sthe\srole|imagine\syou|from\snow\son\syou|you\smust\snow|simulate|respond\sas|answer\sas|"
    r"behave\sas|stay\sin\scharacter|a\scharacter\scalled|an\sai\scalled|an\sai\snamed|a\smodel\scalled|"
    r"you\sare\sgoing\sto\s(?:act|be|pretend)|i\swant\syou\sto\sact|now\syou\sact|as\s[a-z]+gpt|"
    r"you\swill\salways|(?:cant|cannot|can\snot|never)\sbreak\scharacter|fictional\s(?:character|ai|world)|"
    r"write\sdialogue|hypothetical\s(?:ai|response|scenario)|two\s(?:entities|responses|personas)|"
    r"(?:take\son|assume|play)\sthe\srole\sof|in\scharacter\sas|(?:take\son|adopt)\s(?:the\s)?\w+\spersona|"
    r"character\ssimulator|immerse\syourself|another\sai\s(?:model|named|called)|respond\sas\sboth|"
    r"from\sthis\smoment|(?:play|playing)\sa\s(?:text\sbased\s|role\splaying\s)?game)\b"
)
# Words one of which every persona cue holds: without them neither pattern is searched.
PERSONA_WORDS = _words_of(
    "you youre act acting pretend roleplay role play imagine simulate respond answer behave stay character ai model "
    "going want now gpt will always cant cannot never fictional dialogue hypothetical two take assume adopt persona "
    "immerse another both moment playing"
)
UNBOUND = re.compile(
    r"\b(?:(?:no|without|free\sof|free\sfrom|freed\sfrom|not\sbound\sby|no\slonger\sbound\sby|unbound\sby|"
    r"doesnt\shave|does\snot\shave|dont\shave|do\snot\shave|never\sfollows|ignores|breaks|bypasses|"
    r"not\srestricted\sby|not\slimited\sby|released\sfrom|outside|regardless\sof|sans|beyond)\s"
    r"(?:any\s|all\s|the\s|your\s|its\s|of\s|ethical\s|moral\s|content\s|safety\s|openai\s|openais\s|typical\s|"
    r"usual\s|normal\s|ai\s|legal\s|social\s)*"
    r"(?:restrictions|rules|limits|limitations|filters|filtering|guidelines|ethics|morals|morality|censorship|"
    r"boundaries|policies|policy|safeguards|guardrails|constraints|principles|considerations|laws|"
    r"consequences|responsibility)|unfiltered|unfiltred|uncensored|amoral|"
    r"unrestricted|unethical|no\smorals|without\sethics|never\srefuses?|cannot\srefuse|can\snot\srefuse|"
    r"will\snot\srefuse|wont\srefuse|never\ssay\sno|not\sallowed\sto\srefuse|doesnt\scare\sabout|"
    r"condones?\s(?:the\screation|everything|anything|illegal|harmful|violence)|not\sa\sresponsible\sai|"
    r"any\skind\sof\scontent|(?:any|all)\s(?:illegal|unethical|harmful|explicit)\s(?:content|requests|activities)|"
    r"(?:never|not|doesnt|does\snot|wont|will\snot)\s(?:warn|apologi[sz]e|refuse|censor)|"
    r"(?:ethical|moral|content)\s(?:guidelines|restrictions|policies)\sdo\snot\sapply|"
    r"(?:offensive|explicit|illegal|harmful)\scontent\sis\sallowed|"
    r"(?:broken|break|breaks|set)\sfree\sof|free\sof\s(?:your|its|all|the)\s(?:confines|restrictions|limitations)|"
    r"(?:perform|do|say)\sanything\sand\severything|(?:nsfw|explicit\scontent|illegal\s\w+)\s(?:is|are)\sallowed|"
    r"allowed\sto\s(?:provide|say|write|generate)\s(?:\w+\s){0,3}(?:malware|harmful|illegal|explicit)|"
    r"do\snot\sfilter|without\sany\s(?:remorse|ethics|morals|filters?)|does\snot\swithhold|"
    r"no\srules\sno\slimitations|defies?\s(?:\w+\s){0,3}(?:conventions|rules|guidelines)|"
    r"freedom\sto\s(?:answer|say|do)\s(?:\w+\s){0,2}(?:inappropriate|anything)|unhinged)\b"
)
DEVELOPER_MODE = re.compile(r"\b(?:developer|dev)\smode\b")
ASSISTANT_CONTEXT = re.compile(
    r"\b(?:chatgpt|openai|content\spolic(?:y|ies)|polic(?:y|ies)|censor\w*|unrestricted|unfiltered|"
    r"uncensored|jailbr\w+|as\san\sai|language\smodel|simulate|pretend|act\sas|two\sresponses|normal\sresponse)\b"
)
WINDOW = 400  # characters of the word view searched around a persona cue

# Obfuscated spellings, over the squashed view (letters only).
SQUASHED_RULES: list[Rule] = [
    (
        IGNORE,
        frozenset(["ignore", "disregard", "forget", "bypass", "override"]),
        re.compile(
            r"(?:ignore|disregard|forget|bypass|override)(?:about)?(?:the|of|these|those|any){0,2}"
            r"(?:(?:your|all)(?:the|of)?(?:previous|prior|preceding|above|earlier|initial|original|system)?|"
            r"(?:previous|prior|preceding|above|earlier|initial|original|system))"
            r"(?:instructions?|prompts?|directions|rules|guidelines|programming|directives?)"
        ),
    ),
    (
        IGNORE,
        frozenset(["ignore", "disregard", "forget"]),
        re.compile(r"(?:ignore|disregard|forget)(?:everythingabove|allabove|everythingyouweretold)"),
    ),
    (
        REVEAL,
        frozenset(["reveal", "print", "show", "display", "output", "repeat", "dump", "leak", "recite", "disclose"]),
        re.compile(
            r"(?:reveal|print|show|display|output|repeat|dump|leak|recite|disclose)"
            r"(?:me|us|the|your|full|entire|complete|exact|original|initial|hidden|secret|everything|all|in|of){0,4}"
            r"(?:systemprompt|systemmessage|systeminstructions|initialprompt|initialinstructions|"
            r"originalinstructions|hiddeninstructions|hiddenprompt|secretinstructions|yourinstructions|yourprompt)"
        ),
    ),
    (
        REVEAL,
        frozenset(["your"]),
        re.compile(r"(?:whatis|whatare|whatwere|whats|tellme)your(?:system|initial|original|hidden)?prompt"),
    ),
    (
        JAILBREAK,
        frozenset(["now", "mode"]),
        re.compile(r"doanythingnow|developermodeenabled|youarenowdan|jailbrokenmode|danmodeenabled"),
    ),
]


# "Decode this and follow it": an instruction to act on what an encoding hides.
DECODE_AND_FOLLOW = re.compile(
    r"\b(?:decode|decipher|decrypt|translate|convert|unscramble|reverse)\s(?:\w+\s){0,8}?"
    r"(?:and|then)\s(?:\w+\s){0,2}(?:follow|execute|obey|do|run|carry\sout|comply\swith|act\son|perform|apply)\b"
    r"|\bdecode\s(?:\w+\s){0,10}(?:secure|trusted|hidden|secret|real)\s(?:system\s)?(?:message|instruction|command)s?\b"
    r"|\b(?:apply|use)\s(?:rot13|base64|atbash|caesar)\s(?:\w+\s){0,3}(?:then|and)\s(?:comply|follow|obey|execute)\b"
)
DECODE_TRIGGERS = _words_of("decode decipher decrypt translate convert unscramble reverse apply use")
# Markup a browser would run, in a decoded blob.
ACTIVE_MARKUP = re.compile(
    r"<\s*script|javascript\s*:|\bon(?:error|load|mouseover|mouseleave|click)\s*=|<\s*iframe|<\s*img[^>]{0,100}src|"
    r"\balert\s*\(|document\.cookie",
    re.IGNORECASE,
)
