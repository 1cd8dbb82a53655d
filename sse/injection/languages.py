"""The override, extraction and persona phrases in other languages.

Matched over the native view (lower case, accents stripped, script kept), so
"Ignorez toutes les instructions précédentes" and "ignorez toutes les
instructions precedentes" are one text.  The patterns are written with their
accents and stripped the same way when compiled.  Languages: French, German,
Spanish, Italian, Portuguese, Dutch, Polish, Russian, Ukrainian, Turkish,
Arabic, Persian, Hindi, Chinese, Japanese, Korean.
"""

from __future__ import annotations

import re

from .english import IGNORE, JAILBREAK, REVEAL
from .text import strip_accents


def _compile(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{strip_accents(p).replace('ı', 'i')})" for p in patterns))


IGNORE_PHRASES = _compile(
    # French
    r"\b(?:ignore[rz]?|oublie[rz]?|néglige[rz]?|ne\stiens?\spas\scompte\sde|ne\stenez\spas\scompte\sde)\s"
    r"(?:toutes\s|tous\s)?(?:les\s|tes\s|vos\s|ces\s)(?:instructions|consignes|règles|directives|indications|ordres)"
    r"(?:\s(?:précédentes|antérieures|ci\sdessus|initiales|du\ssystème|système))?\b",
    r"\boublie[rz]?\stout\sce\squ",
    # German
    r"\b(?:ignorier(?:e|en|t)?|vergiss|vergessen\ssie|missachte)\s(?:bitte\s)?(?:alle\s|sämtliche\s|deine\s|ihre\s|die\s){0,2}"
    r"(?:vorherigen\s|bisherigen\s|obigen\s|vorigen\s|vorangegangenen\s|früheren\s|ursprünglichen\s)?"
    r"(?:anweisungen|instruktionen|regeln|befehle|vorgaben|richtlinien)\b",
    r"\bvergiss\salles\b",
    # Spanish
    r"\b(?:ignora|ignore|ignorar|olvida|olvide|olvidar|descarta|omite)\s(?:todas\s|todos\s)?(?:las\s|los\s|tus\s|sus\s)?"
    r"(?:instrucciones|indicaciones|reglas|directrices|órdenes)\b",
    r"\bolvida\stodo\slo\s(?:anterior|que)\b",
    # Italian
    r"\b(?:ignora|ignorare|dimentica|dimenticare|trascura)\s(?:tutte\s|tutti\s)?(?:le\s|i\s)?(?:tue\s|tuoi\s)?"
    r"(?:istruzioni|regole|direttive|indicazioni)\b",
    # Portuguese
    r"\b(?:ignore|ignora|ignorar|esqueça|esquece|desconsidere)\s(?:todas\s)?(?:as\s|suas\s|tuas\s)?"
    r"(?:instruções|regras|diretrizes|orientações)\b",
    # Dutch, Polish
    r"\b(?:negeer|vergeet)\s(?:alle\s)?(?:vorige\s|eerdere\s|voorgaande\s)?(?:instructies|regels|opdrachten)\b",
    r"\b(?:zignoruj|zapomnij)\s(?:wszystkie\s)?(?:poprzednie\s|wcześniejsze\s)?(?:instrukcje|polecenia|zasady)\b",
    # Russian, Ukrainian
    r"\b(?:игнорируй(?:те)?|проигнорируй(?:те)?|забудь(?:те)?|не\sобращай(?:те)?\sвнимания\sна)\s(?:все\s|всё\s)?"
    r"(?:предыдущие\s|прошлые\s|прежние\s|свои\s|твои\s|системные\s)?(?:инструкции|указания|правила|команды|ограничения)",
    r"\b(?:ігноруй(?:те)?|забудь(?:те)?)\s(?:всі\s)?(?:попередні\s)?(?:інструкції|вказівки|правила)",
    # Turkish
    r"\b(?:önceki|yukarıdaki|tüm|bütün)\s(?:tüm\s)?(?:talimatları|talimatlarını|kuralları|kurallarını|yönergeleri|"
    r"mesajları)\s(?:unut|yok\ssay|görmezden\sgel|geçersiz\ssay|dikkate\salma)",
    r"\b(?:talimatları|kuralları|kurallarını|rolünü)\s(?:unut|yok\ssay|görmezden\sgel)",
    r"\b(?:tüm\s)?kısıtlamaları(?:nı)?\skaldır|\bfiltreyi\skapat|\bgüvenlik\smodu\skapalı|\bkurallar\sgeçerli\sdeğil|"
    r"\bunut\w{0,6}\s(?:\w+\s)?(?:önceki\s)?talimat|\bignore\s(?:güvenlik|kuralları|talimatları)",
    # Arabic, Persian, Hindi
    r"تجاهل\s(?:جميع\s|كل\s)?(?:التعليمات|الأوامر|القواعد)",
    r"(?:دستورالعمل|دستورات|قوانین|قواعد)\S*\s(?:\S+\s){0,3}(?:را\s)?(?:نادیده\sبگیر|فراموش\sکن)",
    r"(?:पिछले|सभी|पहले\sके)\s(?:सभी\s)?(?:निर्देशों|निर्देश)\s(?:को\s)?(?:अनदेखा|भूल)",
    # Chinese, Japanese, Korean
    r"(?:忽略|无视|忽视|忘记|忘掉|不要理会|無視|忽略掉)(?:之前|以前|上面|以上|前面|先前|所有|全部|你的|原来|原有|上述)?"
    r"(?:的)?(?:所有|全部|一切)?(?:的)?(?:指令|指示|说明|規則|规则|提示|命令|设定|限制)",
    r"(?:以前|前|上記|これまで|今まで)の(?:すべての|全ての)?(?:指示|命令|ルール|プロンプト)を(?:無視|忘れ)",
    r"(?:이전|앞의|모든)\s?(?:지시|지침|명령|규칙)(?:을|를|은|는)?\s?(?:무시|잊어)",
)

REVEAL_PHRASES = _compile(
    r"\b(?:montre|affiche|révèle|révélez|donne|donnez|répète|écris|imprime|divulgue)(?:\s|\s?moi\s)(?:intégralement\s)?"
    r"(?:ton|ta|tes|votre|vos|le|la|les)\s(?:prompt|invite|message|consignes|instructions)\s"
    r"(?:système|du\ssystème|initial(?:es)?|cachée?s?)",
    r"\b(?:zeig(?:e)?|gib|verrate|nenne|wiederhole|drucke)\s(?:mir\s)?(?:deine[nrs]?\s|ihre[nrs]?\s|den\s|die\s)?"
    r"(?:system\s?prompt|systemanweisungen|systemanweisung|system\seingabeaufforderung|systemnachricht|"
    r"anfangsanweisungen|ursprünglichen\sanweisungen|versteckten\sanweisungen)",
    r"\b(?:muestra|muéstrame|revela|dime|imprime|repite|enséñame|escribe)\s(?:tu|tus|el|los|las)\s"
    r"(?:prompt|mensaje|instrucciones|indicaciones)\s(?:del?\ssistema|de\ssistema|inicial(?:es)?|ocult[oa]s?)",
    r"\b(?:mostra|rivela|dimmi|stampa|ripeti|scrivi)\s(?:il\s|le\s|i\s)?(?:tuo\s|tue\s|tuoi\s)?"
    r"(?:prompt|messaggio|istruzioni)\s(?:di\ssistema|del\ssistema|iniziali)",
    r"\b(?:mostre|mostra|revele|revela|diga|imprima|repita)\s(?:o\s|as\s|os\s)?(?:seu\s|suas\s|teu\s|tuas\s)?"
    r"(?:prompt|mensagem|instruções)\s(?:do\ssistema|de\ssistema|iniciais)",
    r"(?:покажи|выведи|раскрой|напиши|повтори|скажи)\s(?:мне\s)?(?:свой\s|свои\s|твой\s|твои\s|весь\s)?"
    r"(?:системный\sпромпт|системные\sинструкции|системное\sсообщение|исходные\sинструкции)",
    r"(?:输出|显示|告诉我|重复|打印|泄露|展示|给我看)(?:一下)?(?:你的)?(?:完整的|原始的|全部)?"
    r"(?:系统提示词?|系统指令|初始指令|系统消息)",
    r"システムプロンプト(?:を|の内容を)(?:表示|教え|出力|見せ)",
    r"(?:أظهر|اعرض|اكشف)\s(?:\S+\s){0,3}(?:موجه\sالنظام|تعليمات\sالنظام)",
    r"(?:sistem\s(?:istemini|istemi|mesajını|talimatlarını)|iç\s(?:talimatları|talimatlarını|yönergelerini)|"
    r"gizli\stalimatları)\s(?:\S+\s){0,5}(?:göster|yaz|açıkla|tekrarla|sızdır|ver)",
    r"\b(?:sızdır|göster|yaz)\s(?:\S+\s){0,3}(?:gizli\stalimatları|iç\stalimatları|sistem\sistemini)",
)

UNBOUND_PHRASES = _compile(
    r"\bsans\s(?:aucune\s)?(?:restrictions?|limites|filtres?|censure|règles)\b",
    r"\bohne\s(?:jegliche\s|irgendwelche\s)?(?:einschränkungen|regeln|filter|zensur|grenzen)\b|\bkeine\sregeln\b",
    r"\bsin\s(?:ninguna\s)?(?:restricciones|límites|filtros?|censura|reglas)\b",
    r"\bsenza\s(?:alcuna\s)?(?:restrizioni|limiti|filtri|censura|regole)\b",
    r"\bsem\s(?:nenhuma\s)?(?:restrições|limites|filtros?|censura|regras)\b",
    r"без\s(?:каких\sлибо\s)?(?:ограничений|цензуры|фильтров|правил)",
    r"بلا\sقيود|بدون\sقيود",
    r"\b(?:filtresiz|sınırsız|sansürsüz|kısıtlamasız)\b|kısıtlamalarını\skaldır|tüm\skısıtlamaları\skaldır",
    r"没有任何限制|不受任何限制|无限制|没有限制|不受限制",
)
PERSONA_PHRASES = _compile(
    r"\b(?:tu\ses|vous\sêtes)\s(?:maintenant|désormais)\b|\bdésormais\b|\bmode\sdéveloppeur\b|"
    r"\ben\stant\squ\s?assistant\b|\bals\sassistent\b|\bcome\sassistente\b|\bcomo\sasistente\b",
    r"\b(?:ab\sjetzt|du\sbist\sjetzt|ab\ssofort|entwicklermodus)\b",
    r"\b(?:ahora\seres|ahora\sestás|a\spartir\sde\sahora|modo\sdesarrollador)\b",
    r"\b(?:ora\ssei|d\sora\sin\spoi|modalità\ssviluppatore)\b",
    r"\b(?:agora\svocê\sé|modo\sdesenvolvedor|a\spartir\sde\sagora)\b",
    r"(?:теперь\sты|отныне\sты|режим\sразработчика)",
    r"أنت\sالآن",
    r"\b(?:sen\sartık|sen\sşimdi|bundan\ssonra|geliştirici\smodu)\b",
    r"(?:你现在是|从现在开始|开发者模式)",
)
WINDOW = 300


def _stems(words: str, stems: str, objects: str = "") -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
    """Words an ASCII view must hold for a rule to be tried (a verb, and an object when given), and stems for any
    other view."""
    return (
        frozenset(words.split()),
        frozenset(objects.split()),
        tuple(strip_accents(stem).replace("ı", "i").replace("_", " ") for stem in stems.split()),
    )


# Each pattern is searched only when the view holds one of its words (ASCII
# text) or stems (any other): a set lookup or a few substring searches
# instead of a large alternation tried at every position.
IGNORE_STEMS = _stems(
    "ignore ignorez ignorer ignores ignora ignorar ignoriere ignorieren ignorier ignoriert oublie oubliez oublier "
    "neglige negligez tiens tenez vergiss vergessen missachte olvida olvide olvidar descarta omite dimentica "
    "dimenticare trascura esqueca esquece desconsidere negeer vergeet zignoruj zapomnij unut say gormezden gecersiz "
    "dikkate unutmak kisitlamalari kisitlamalarini filtreyi guvenlik kurallar",
    "ignor oubli néglig compte vergiss vergessen missacht olvid descart omite dimentic trascur esqueç esquec "
    "desconsider negeer vergeet zignoruj zapomnij игнор проигнор забуд обращ ігнор unut yok_say gormezden gecersiz "
    "dikkate kısıtlamaları filtreyi güvenlik kurallar "
    "تجاهل نادیده فراموش अनदेखा भूल 忽略 无视 忽视 忘记 忘掉 理会 無視 忘れ 무시 잊어",
    # What the verbs act on, or what stands alone; English "ignore" alone does not wake these patterns.
    "instructions consignes regles directives indications ordres tout anweisungen instruktionen regeln befehle "
    "vorgaben richtlinien alles instrucciones indicaciones reglas directrices ordenes todo istruzioni regole direttive "
    "indicazioni instrucoes regras diretrizes orientacoes instructies regels opdrachten instrukcje polecenia zasady "
    "talimatlari talimatlarini kurallari kurallarini yonergeleri mesajlari rolunu kisitlamalari kisitlamalarini "
    "filtreyi modu gecerli talimat talimatlar guvenlik",
)
REVEAL_STEMS = _stems(
    "montre affiche revele revelez donne repete ecris imprime divulgue zeig zeige gib verrate nenne wiederhole "
    "drucke muestra muestrame revela dime imprime repite ensename escribe mostra rivela dimmi stampa ripeti scrivi "
    "mostre revele diga imprima repita sizdir goster yaz",
    "montre affiche révèle révélez donne répète écris imprime divulgue zeig gib verrate nenne wiederhole drucke "
    "muestra muéstrame revela dime repite enséñame escribe mostra rivela dimmi stampa ripeti scrivi mostre revele "
    "diga imprima repita покажи выведи раскрой напиши повтори скажи 输出 显示 告诉我 重复 打印 泄露 展示 给我看 "
    "システムプロンプト أظهر اعرض اكشف sistem talimat yönerge",
)
UNBOUND_STEMS = _stems(
    "sans ohne keine sin senza sem filtresiz sinirsiz sansursuz kisitlamalarini kisitlamalari",
    "sans ohne keine sin senza sem без بلا بدون filtresiz sınırsız sansürsüz kısıtlama 限制",
)
RULES = [(IGNORE, IGNORE_STEMS, IGNORE_PHRASES), (REVEAL, REVEAL_STEMS, REVEAL_PHRASES)]
PERSONA_FLAG = JAILBREAK
